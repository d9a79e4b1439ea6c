package main

import (
	"fmt"
	"math"
	"strings"
)

// target is one of the targets with what this run measured.
type target struct {
	Name     string `json:"name"`
	Want     string `json:"want"`
	Measured string `json:"measured"`
	Status   string `json:"status"` // met, MISSED, or "not measured: why"
}

const (
	met         = "met"
	missed      = "MISSED"
	notMeasured = "not measured"
)

func status(ok bool) string {
	if ok {
		return met
	}
	return missed
}

// minRuns is how many interleaved runs a median comparison needs.
const minRuns = 30

// Targets from issue 4, in order. A target is judged only on what the run
// measured; nothing here is ever relaxed to make a target pass.
const (
	maxFloorRatio     = 1.05
	maxFloorExtraMS   = 0.3
	minPolledRatio    = 20
	maxCPURatio       = 1.2
	maxStartToExecMS  = 5
	maxBinaryBytes    = 3 << 20
	maxRSSKiB         = 8 << 10
	maxKillLateMS     = 10
	largeN            = 10000
	polledRatioMaxN   = 10
	floorRatioMaxN    = 1000
	cpuTargetScenario = "exit"
)

// evaluate judges the targets on the samples.
func evaluate(res *Result, rs []*row) []target {
	var ts []target

	// vminit ÷ floor, by median, N ≤ 1000, "exit" and "random".
	for _, sc := range []string{"exit", "random"} {
		for _, n := range []int{1, 10, 100, 1000} {
			v, f := find(rs, sc, n, "vminit"), find(rs, sc, n, "floor")
			if v == nil || f == nil {
				continue
			}
			t := target{Name: fmt.Sprintf("vminit ÷ floor, %s N=%d", sc, n),
				Want: fmt.Sprintf("≤ %.2f or ≤ floor + %.1f ms (median, ≥ %d runs)", maxFloorRatio, maxFloorExtraMS, minRuns)}
			vm, fm := v.Latency.Median, f.Latency.Median
			t.Measured = fmt.Sprintf("%s ÷ %s ms = %.3f (%+.2f ms), %d/%d runs", ms(vm), ms(fm), vm/fm, vm-fm, v.Latency.N, f.Latency.N)
			switch {
			case v.Latency.N < minRuns || f.Latency.N < minRuns:
				t.Status = fmt.Sprintf("%s: fewer than %d runs", notMeasured, minRuns)
			default:
				t.Status = status(vm/fm <= maxFloorRatio || vm-fm <= maxFloorExtraMS)
			}
			ts = append(ts, t)
		}
	}

	// polled ÷ vminit on "exit", N ≤ 10.
	for _, n := range []int{1, 10} {
		v, p := find(rs, "exit", n, "vminit"), find(rs, "exit", n, "polled")
		if v == nil || p == nil {
			continue
		}
		r := p.Latency.Median / v.Latency.Median
		ts = append(ts, target{Name: fmt.Sprintf("polled ÷ vminit, exit N=%d", n), Want: fmt.Sprintf("≥ %d (median)", minPolledRatio),
			Measured: fmt.Sprintf("%s ÷ %s ms = %.1f", ms(p.Latency.Median), ms(v.Latency.Median), r), Status: status(r >= minPolledRatio)})
	}

	// Every SIGTERM handler finishes, in every scenario.
	{
		bad, total := []string{}, 0
		for _, s := range res.Samples {
			if s.Strategy != "vminit" {
				continue
			}
			total++
			if !s.OK || s.Graceful != s.GracefulWant {
				bad = append(bad, fmt.Sprintf("%s N=%d run %d: %d/%d", s.Scenario, s.N, s.Rep, s.Graceful, s.GracefulWant))
			}
		}
		m := fmt.Sprintf("%d of %d vminit runs", total-len(bad), total)
		if len(bad) > 0 {
			m += "; short: " + strings.Join(bad[:min(len(bad), 5)], ", ")
		}
		ts = append(ts, target{Name: "graceful = all (vminit)", Want: "every process with a SIGTERM handler finishes it, every run", Measured: m, Status: status(len(bad) == 0 && total > 0)})
	}

	// Lost wake-ups.
	{
		lost := map[string]int{}
		runs := map[string]int{}
		unseen := 0
		for _, s := range res.Samples {
			lost[s.Strategy] += s.Lost
			runs[s.Strategy]++
			if s.Strategy == "signalfd" {
				unseen += s.Unseen
			}
		}
		ts = append(ts, target{Name: "lost wake-ups (vminit)", Want: "0 over the whole matrix; signalfd's shown",
			Measured: fmt.Sprintf("vminit %d in %d runs; signalfd %d in %d runs (%d exits no siginfo named, coalescing included)", lost["vminit"], runs["vminit"], lost["signalfd"], runs["signalfd"], unseen),
			Status:   status(lost["vminit"] == 0 && runs["vminit"] > 0)})
	}

	// N = 10000, and CPU per reaped process.
	{
		v, f := find(rs, cpuTargetScenario, largeN, "vminit"), find(rs, cpuTargetScenario, largeN, "floor")
		t := target{Name: fmt.Sprintf("N=%d completes; PID 1 CPU per reaped process", largeN), Want: fmt.Sprintf("all runs reach reboot; vminit ≤ %.1f × floor (median)", maxCPURatio)}
		switch {
		case v == nil || f == nil:
			t.Status = notMeasured + ": no N=10000 cell in this matrix"
		case math.IsNaN(v.CPUPerReaped.Median) || math.IsNaN(f.CPUPerReaped.Median):
			t.Measured = fmt.Sprintf("%d/%d vminit runs ok", v.Runs-v.Failed, v.Runs)
			t.Status = notMeasured + ": no cgroup v2 for PID 1's CPU time"
		default:
			r := v.CPUPerReaped.Median / f.CPUPerReaped.Median
			t.Measured = fmt.Sprintf("%d/%d vminit runs ok; %.1f ÷ %.1f µs = %.2f", v.Runs-v.Failed, v.Runs, v.CPUPerReaped.Median, f.CPUPerReaped.Median, r)
			t.Status = status(v.Failed == 0 && r <= maxCPURatio)
		}
		ts = append(ts, t)
	}

	// Start → workload exec, binary size, RSS.
	{
		var xs []float64
		var rss int64
		probes := 0
		for _, s := range res.Samples {
			if s.Strategy != "vminit" || !s.OK {
				continue
			}
			rss = max(rss, s.HWM, s.PeakRSS)
			if s.Probe {
				probes++
			} else if s.StartToExec > 0 {
				xs = append(xs, float64(s.StartToExec)/1e6)
			}
		}
		d := distOf(xs)
		own := float64(res.SandboxStart) / 1e6
		t := target{Name: "vminit start → workload exec", Want: fmt.Sprintf("≤ %d ms", maxStartToExecMS),
			Measured: fmt.Sprintf("median %s ms = %s ms measured from the sandbox's start (p95 %s, %d runs) − %s ms the launcher takes to start any PID 1",
				ms(d.Median-own), ms(d.Median), ms(d.P95), d.N, ms(own))}
		if d.N == 0 {
			t.Status = notMeasured
		} else {
			t.Status = status(d.Median-own <= maxStartToExecMS)
		}
		ts = append(ts, t)
		b := res.Binaries
		ts = append(ts, target{Name: "vminit binary, static and stripped", Want: "≤ 3 MB (3 MiB)",
			Measured: fmt.Sprintf("%d bytes (%.2f MiB), static: %v", b.Vminit, float64(b.Vminit)/(1<<20), b.VminitStatic),
			Status:   status(b.Vminit > 0 && b.Vminit <= maxBinaryBytes && b.VminitStatic)})
		t = target{Name: "vminit PID 1 peak RSS", Want: "≤ 8 MB (8 MiB)",
			Measured: fmt.Sprintf("%.1f MiB (VmHWM, largest over all runs; %d probe runs read it until PID 1 ended)", float64(rss)/1024, probes)}
		switch {
		case rss == 0:
			t.Status = notMeasured
		case probes == 0:
			t.Status = status(rss <= maxRSSKiB) + " (before the trigger only: no probe run)"
		default:
			t.Status = status(rss <= maxRSSKiB)
		}
		ts = append(ts, t)
	}

	// Stragglers.
	{
		worst, n := math.NaN(), 0
		for _, s := range res.Samples {
			if s.Strategy == "vminit" && s.KillLate != nil {
				late := float64(*s.KillLate) / 1e6
				if n == 0 || late > worst {
					worst = late
				}
				n++
			}
		}
		t := target{Name: "straggler SIGKILL after the grace deadline (vminit)", Want: fmt.Sprintf("≤ %d ms", maxKillLateMS)}
		if n == 0 {
			t.Status = notMeasured + ": no straggler scenario in this matrix"
		} else {
			t.Measured = fmt.Sprintf("worst %s ms over %d runs", ms(worst), n)
			t.Status = status(worst <= maxKillLateMS)
		}
		ts = append(ts, t)
	}
	return ts
}

// ms formats milliseconds with three significant digits or so.
func ms(x float64) string {
	switch {
	case math.IsNaN(x):
		return "–"
	case x >= 100:
		return fmt.Sprintf("%.0f", x)
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	default:
		return fmt.Sprintf("%.2f", x)
	}
}
