package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vminit/vminit/internal/sandbox"
)

// built holds the programs, built once for all tests.
var built struct {
	once sync.Once
	b    *bins
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.b != nil {
		os.RemoveAll(built.b.dir)
	}
	os.Exit(code)
}

// needRoot skips a test unless it runs as root, and returns the programs.
func needRoot(t *testing.T) *bins {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: every strategy runs as PID 1 of a sandbox whose root maps to uid 65534, which only root may set up (run make test as root)")
	}
	built.once.Do(func() { built.b, built.err = build() })
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.b
}

// TestSmoke runs every strategy once in every scenario, small and short (the
// smoke matrix), through the same code as make bench, and checks that each
// strategy really did its job: the worker made N processes, PID 1 reaped all
// N after the trigger and ended by reboot(2) (the host saw SIGINT), and the
// SIGTERM handlers ran as the strategy's design allows. Then it writes the
// JSON, table and plot.
func TestSmoke(t *testing.T) {
	b := needRoot(t)
	m, err := matrices("smoke", 0)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	start := time.Now()
	res, err := runMatrix(m, 1, b, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	t.Logf("%d runs in %v", len(res.Samples), time.Since(start).Round(time.Millisecond))
	seen := map[string]int{}
	for _, s := range res.Samples {
		name := s.Scenario + "/" + s.Strategy
		seen[name]++
		if !s.OK {
			t.Errorf("%s: %s", name, s.Err)
			continue
		}
		if s.WaitStatus != "killed by SIGINT" || s.Reaped != s.N || s.Processes != s.N {
			t.Errorf("%s: %s, reaped %d of %d (made %d)", name, s.WaitStatus, s.Reaped, s.N, s.Processes)
		}
		// Only vminit continues stopped processes (SIGCONT); the others
		// SIGKILL them at the grace, before their handler could run.
		want := s.GracefulWant
		if s.Strategy != "vminit" {
			want -= stoppedCount(s.Scenario, s.N)
		}
		if s.Graceful != want {
			t.Errorf("%s: %d SIGTERM handlers finished, want %d", name, s.Graceful, want)
		}
		if s.Strategy != "signalfd" && s.Lost != 0 {
			t.Errorf("%s: %d lost wake-ups", name, s.Lost)
		}
		if s.Scenario == "ignore" && s.KillLate == nil {
			t.Errorf("%s: no SIGKILL at the grace", name)
		}
		if s.HWM <= 0 {
			t.Errorf("%s: no VmHWM read", name)
		}
	}
	for _, sc := range scenarios {
		for _, st := range strategyNames {
			if seen[sc.name+"/"+st] == 0 {
				t.Errorf("%s/%s never ran", sc.name, st)
			}
		}
	}
	dir := t.TempDir()
	paths, err := writeOutputs(res, dir, "smoke", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{".json", ".md", ".svg"} {
		b, err := os.ReadFile(filepath.Join(dir, "smoke"+ext))
		if err != nil || len(b) == 0 {
			t.Errorf("%s: %v (%d bytes)", ext, err, len(b))
		}
	}
	back, err := readResult(paths[0])
	if err != nil || len(back.Samples) != len(res.Samples) {
		t.Errorf("JSON round trip: %v", err)
	}
	if t.Failed() {
		t.Logf("progress:\n%s", log.String())
	}
}

// TestStrategyRefuses: the strategy program calls kill(-1) and reboot(2), so
// it must refuse unless it is PID 1 of a sandbox. It is run as PID 2 of a
// sandbox (never on the host itself: were the guard broken, the sandbox
// would still confine it).
func TestStrategyRefuses(t *testing.T) {
	b := needRoot(t)
	sh, err := os.Open("/bin/sh")
	if err != nil {
		t.Skip("no /bin/sh")
	}
	defer sh.Close()
	out, err := os.CreateTemp("", "vminit-bench-refuse-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(out.Name())
	defer out.Close()
	if err := out.Chmod(0o666); err != nil {
		t.Fatal(err)
	}
	p, err := sandbox.Start(sandbox.Options{Exe: sh, Args: []string{"sh", "-c", b.strategy + ` -s floor -- /bin/true 2>&1; echo "status $?"`},
		Env: []string{"PATH=/usr/bin:/bin"}, Files: []*os.File{os.Stdin, out, out}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		p.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		p.Signal(9)
		<-done
		t.Fatal("still running after 30s")
	}
	got, _ := os.ReadFile(out.Name())
	if !strings.Contains(string(got), "refusing to act as init") || !strings.Contains(string(got), "status 1") {
		t.Errorf("as PID 2 of a sandbox the strategy said %q, want a refusal and status 1", got)
	}
}
