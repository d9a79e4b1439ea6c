package main

import (
	"bytes"
	"encoding/binary"
	"math"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vminit/vminit/internal/event"
)

func TestDist(t *testing.T) {
	for _, tc := range []struct {
		xs                    []float64
		median, p95, min, max float64
	}{
		{[]float64{3}, 3, 3, 3, 3},
		{[]float64{4, 1, 3, 2}, 2.5, 4, 1, 4},
		{[]float64{5, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, 10.5, 19, 1, 20},
	} {
		d := distOf(tc.xs)
		if d.Median != tc.median || d.P95 != tc.p95 || d.Min != tc.min || d.Max != tc.max {
			t.Errorf("distOf(%v) = %+v, want median %v p95 %v min %v max %v", tc.xs, d, tc.median, tc.p95, tc.min, tc.max)
		}
	}
	if d := distOf(nil); !math.IsNaN(d.Median) {
		t.Errorf("distOf(nil).Median = %v, want NaN", d.Median)
	}
}

func TestMatrices(t *testing.T) {
	for _, name := range []string{"quick", "full", "smoke"} {
		m, err := matrices(name, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range m.Cells {
			sc, ok := lookupScenario(c.Scenario)
			if !ok || c.N < sc.minN || c.Reps < 1 || c.Grace <= 0 {
				t.Errorf("%s: bad cell %+v", name, c)
			}
		}
	}
	// The targets compare medians of at least 30 interleaved runs.
	q, _ := matrices("quick", 0)
	for _, c := range q.Cells {
		if (c.Scenario == "exit" || c.Scenario == "random") && c.N <= 1000 && c.Reps < minRuns {
			t.Errorf("quick: %v has %d runs, the targets need %d", c, c.Reps, minRuns)
		}
	}
	for _, c := range q.Cells {
		if c.Scenario == "exit" && c.N <= polledRatioMaxN && c.PolledReps < minRuns {
			t.Errorf("quick: %v has %d polled runs, the polled ratio needs %d", c, c.PolledReps, minRuns)
		}
	}
	if _, err := matrices("nope", 0); err == nil {
		t.Error("unknown matrix accepted")
	}
}

func TestScenarioCounts(t *testing.T) {
	for _, tc := range []struct {
		sc               string
		n, stop, ignored int
	}{
		{"stopped", 2, 1, 0}, {"stopped", 11, 1, 0}, {"stopped", 12, 2, 0}, {"stopped", 100, 10, 0},
		{"ignore", 1, 0, 0}, {"ignore", 100, 0, 1}, {"exit", 100, 0, 0},
	} {
		if got := stoppedCount(tc.sc, tc.n); got != tc.stop {
			t.Errorf("stoppedCount(%s, %d) = %d, want %d", tc.sc, tc.n, got, tc.stop)
		}
		if got := ignoredCount(tc.sc, tc.n); got != tc.ignored {
			t.Errorf("ignoredCount(%s, %d) = %d, want %d", tc.sc, tc.n, got, tc.ignored)
		}
	}
}

func rec(kind byte, pid int32, a, b int64) []byte {
	buf := make([]byte, recordSize)
	binary.NativeEndian.PutUint32(buf, uint32(kind))
	binary.NativeEndian.PutUint32(buf[4:], uint32(pid))
	binary.NativeEndian.PutUint64(buf[8:], uint64(a))
	binary.NativeEndian.PutUint64(buf[16:], uint64(b))
	return buf
}

func TestRecords(t *testing.T) {
	var b []byte
	b = append(b, rec('R', 2, 1500, 3)...)
	b = append(b, rec('G', 3, 2100, 0)...)
	b = append(b, rec('G', 3, 2100, 0)...) // counted once
	b = append(b, rec('G', 2, 2400, 0)...)
	var s Sample
	if p := s.records(b, 1000, 2000); len(p) != 0 {
		t.Fatal(p)
	}
	if s.StartToExec != 500 || s.Processes != 3 || s.Graceful != 2 || s.LastExit != 400 {
		t.Errorf("got %+v", s)
	}
	if !hasRecord(b, 'R') || hasRecord(b[recordSize:], 'R') {
		t.Error("hasRecord")
	}
	if p := s.records(append(rec('E', 4, 11, 2), 1), 0, 0); len(p) != 2 || !strings.Contains(p[0], "fork") {
		t.Errorf("problems %q, want a fork error and a stray byte", p)
	}
}

// TestVminitLost checks how lost wake-ups are read from vminit's events:
// exits reaped by the drain at the grace deadline, before SIGKILL.
func TestVminitLost(t *testing.T) {
	const ms = int64(time.Millisecond)
	var b bytes.Buffer
	for _, e := range []event.Event{
		{Kind: event.Ready, Mono: 10 * ms},
		{Kind: event.Trigger, Mono: 100 * ms, Source: "SIGTERM"},
		{Kind: event.SigTerm, Mono: 101 * ms, Grace: time.Second},
		{Kind: event.Reaped, Mono: 102 * ms, PID: 3},
		{Kind: event.Reaped, Mono: 1101 * ms, PID: 4}, // at the deadline: lost
		{Kind: event.GraceExpired, Mono: 1101 * ms, Survivors: []event.Proc{{PID: 5}}},
		{Kind: event.SigKill, Mono: 1101*ms + 50},
		{Kind: event.Reaped, Mono: 1102 * ms, PID: 5, Status: 137, Signal: "SIGKILL"},
		{Kind: event.Sync, Mono: 1103 * ms, Step: "start"},
		{Kind: event.Sync, Mono: 1104 * ms, Step: "end"},
		{Kind: event.Reboot, Mono: 1105 * ms, Command: "poweroff"},
	} {
		b.Write(e.AppendJSON(nil))
	}
	var s Sample
	if p := s.vminitEvents(b.Bytes(), 0, 100*ms, time.Second); len(p) != 0 {
		t.Fatal(p)
	}
	if s.Reaped != 3 || s.Lost != 1 || s.KillLate == nil || *s.KillLate != 50 || s.TermSent != ms || s.Sync != ms || s.Ready != 10*ms {
		t.Errorf("got %+v (kill late %v)", s, s.KillLate)
	}
}

func TestStrategyReport(t *testing.T) {
	var s Sample
	line := `{"strategy":"polled","trigger_ns":100,"term_ns":150,"grace_end_ns":1000,"kill_ns":1300,"done_ns":1400,"sync_ns":1500,"reaped":7,"lost":0,"unseen":0,"wakeups":0,"sleeps":3,"left":0}` + "\n"
	if p := s.strategyReport([]byte(line), 100); len(p) != 0 {
		t.Fatal(p)
	}
	if s.Reaped != 7 || s.Sleeps != 3 || s.TermSent != 50 || *s.KillLate != 300 || s.WaitDone != 1300 || s.Sync != 100 {
		t.Errorf("got %+v", s)
	}
	if p := s.strategyReport(nil, 0); len(p) == 0 {
		t.Error("a missing report line is not a problem")
	}
}

// synthetic is a result with every kind of cell, for the report and plot.
func synthetic() *Result {
	m, _ := matrices("quick", 2)
	res := &Result{Matrix: m, Command: "test", Binaries: Binaries{Vminit: 2 << 20, VminitStatic: true}}
	base := map[string]float64{"vminit": 1.02, "floor": 1, "polled": 40, "signalfd": 1.5}
	for _, c := range m.Cells {
		for rep := 0; rep < c.Reps; rep++ {
			for _, st := range strategyNames {
				lat := base[st] * (2 + float64(c.N)/20) * float64(time.Millisecond) * (1 + float64(rep)/100)
				s := Sample{Scenario: c.Scenario, N: c.N, Strategy: st, Rep: rep, OK: true, Latency: int64(lat),
					Reaped: c.N, Graceful: c.N, GracefulWant: c.N, CPU: int64(c.N) * 20000, HWM: 3000, StartToExec: 3e6}
				if st == "polled" && rep%2 == 0 {
					s.Sleeps = 1
				}
				res.Samples = append(res.Samples, s)
			}
		}
	}
	return res
}

func TestReportAndPlot(t *testing.T) {
	res := synthetic()
	var md bytes.Buffer
	writeReport(&md, res)
	for _, want := range []string{"## exit:", "| 1000 | vminit |", "## Targets", "vminit ÷ floor, exit N=1", "polled N=1:"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, md.String())
		}
	}
	var svg bytes.Buffer
	if err := writePlot(&svg, res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(svg.String(), "<svg") || !strings.Contains(svg.String(), "exit") {
		t.Errorf("not an SVG plot of the exit scenario: %.200s", svg.String())
	}
}

func TestTargets(t *testing.T) {
	res := synthetic()
	ts := evaluate(res, rows(res.Samples))
	byName := map[string]target{}
	for _, x := range ts {
		byName[x.Name] = x
	}
	// Two runs per cell: too few to judge a median against the floor.
	if st := byName["vminit ÷ floor, exit N=1"].Status; !strings.HasPrefix(st, notMeasured) {
		t.Errorf("floor ratio with 2 runs: %q", st)
	}
	if st := byName["polled ÷ vminit, exit N=1"].Status; st != met {
		t.Errorf("polled ratio 39: %q", st)
	}
	if st := byName["vminit binary, static and stripped"].Status; st != met {
		t.Errorf("binary: %q", st)
	}
	res.Samples[0].Graceful--
	for _, x := range evaluate(res, rows(res.Samples)) {
		if x.Name == "graceful = all (vminit)" && x.Status != missed {
			t.Errorf("a run short of one graceful exit: %q", x.Status)
		}
	}
}

// TestLean keeps gonum (the plot) out of vminit and of the strategies that
// run as PID 1 beside it: their size and RSS are measured.
func TestLean(t *testing.T) {
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	for _, pkg := range []string{"../cmd/vminit", "./strategy"} {
		out, err := exec.Command(gotool, "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, bad := range []string{"gonum.org/", "codeberg.org/", "git.sr.ht/", "golang.org/x/image", "github.com/ajstarks/"} {
				if strings.HasPrefix(dep, bad) {
					t.Errorf("%s depends on %s: the plotting libraries belong to the harness only", pkg, dep)
				}
			}
		}
	}
}
