package shutdown

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vminit/vminit/internal/event"
	"github.com/vminit/vminit/internal/sandbox"
	"github.com/vminit/vminit/loop"
)

// The sequence's failure paths, run for real: this test binary is started as
// PID 1 of new namespaces (internal/sandbox, root mapped to uid 65534), runs
// one scenario with the real loop, reaper and Sequence, and reports its
// events as JSON lines on descriptor 3. Only sync(2) and reboot(2) can be
// replaced (Config.Sync, Config.Reboot): a hung disk cannot be made on a
// shared machine, and a reboot that fails cannot be had in a namespace.

const scenarioEnv = "VMINIT_SEQUENCE_TEST"

// pid1Scenario runs in the child. It never returns normally for scenarios
// that reboot: the kernel ends the namespace.
func pid1Scenario(name string) int {
	signals := make(chan os.Signal, 64)
	signal.Notify(signals, syscall.SIGCHLD)
	report := os.NewFile(3, "report")
	sink := event.NewSink(report, true, slog.LevelInfo)
	fail := func(err error) int {
		sink.Emit(event.Event{Kind: event.Error, Step: "scenario", Err: err.Error()})
		return 3
	}
	if name == "panic" {
		defer Emergency(Poweroff, time.Second, nil)
		panic("boom")
	}
	// As vminit does in its sandbox: mounts stay in this namespace, and
	// /proc shows this PID namespace (names of zombies, survivors).
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fail(err)
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fail(err)
	}

	l, err := loop.New()
	if err != nil {
		return fail(err)
	}
	r := NewReaper()
	r.OnExit = func(e Exit) { sink.Emit(event.Event{Kind: event.Reaped, PID: e.PID, Comm: e.Comm, Status: e.Status}) }
	cfg := DefaultConfig()
	release := make(chan struct{})
	switch name {
	case "reboot-fails":
		cfg.Reboot = func(int) error { return unix.EPERM }
	case "sync-hangs":
		// sync hangs past its deadline, then returns: the late result must
		// be dropped. Reboot fails, so that PID 1 lives on to see it.
		cfg.SyncTimeout = 100 * time.Millisecond
		cfg.Sync = func() { <-release }
		cfg.Reboot = func(int) error { return unix.EPERM }
	case "kill-deadline":
		cfg.Grace, cfg.KillTimeout = 10*time.Millisecond, time.Millisecond
	}
	var seq *Sequence
	emit := func(e event.Event) {
		sink.Emit(e)
		// The scenarios that freeze end when they have shown what they are
		// for; the others end by reboot(2).
		if e.Kind != event.Error || !strings.Contains(e.Err, "frozen") {
			return
		}
		delay := time.Duration(0)
		if name == "sync-hangs" {
			close(release)                 // the late sync result comes now...
			delay = 300 * time.Millisecond // ...and must be dropped
		}
		end, _ := l.NewTimer(func() {
			sink.Emit(event.Event{Kind: event.Log, Msg: "done", Phase: seq.Phase().String()})
			l.Close()
		})
		end.Reset(delay)
	}
	if seq, err = New(l, r, emit, cfg); err != nil {
		return fail(err)
	}
	if err := l.Signals(signals, func(s unix.Signal) {
		if s == unix.SIGCHLD {
			r.Reap()
		}
	}); err != nil {
		return fail(err)
	}
	if name == "kill-deadline" {
		// A process that takes long to die: freeing 512 MiB of touched
		// memory outlasts a 1 ms kill deadline.
		ready := make(chan struct{})
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			return fail(err)
		}
		if _, err := syscall.ForkExec("/proc/self/exe", []string{"bigmem", "-test.run=^$"}, &syscall.ProcAttr{
			Env: []string{scenarioEnv + "=bigmem"}, Files: []uintptr{0, 1, 2, uintptr(p[1])},
		}); err != nil {
			return fail(err)
		}
		unix.Close(p[1])
		go func() { // it writes a byte once its memory is touched
			var b [1]byte
			unix.Read(p[0], b[:])
			close(ready)
		}()
		<-ready
	}
	r.Reap()
	seq.Start("test")
	if err := l.Run(); err != nil {
		return fail(err)
	}
	return 0
}

func TestMain(m *testing.M) {
	switch mode := os.Getenv(childEnv); {
	case mode != "":
		os.Exit(reaperChild(mode))
	}
	switch name := os.Getenv(scenarioEnv); name {
	case "":
	case "bigmem":
		signal.Ignore(syscall.SIGTERM) // only SIGKILL ends it, slowly
		b := make([]byte, 512<<20)
		for i := range len(b) / 4096 {
			b[i*4096] = 1
		}
		os.NewFile(3, "ready").Write([]byte{1})
		for {
			unix.Pause()
		}
	default:
		os.Exit(pid1Scenario(name))
	}
	os.Exit(m.Run())
}

// runScenario starts this test binary as PID 1 of new namespaces and returns
// its events and how it ended.
func runScenario(t *testing.T, name string) ([]event.Event, unix.WaitStatus) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs as PID 1 of new user and PID namespaces mapped to uid 65534")
	}
	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	devnull, _ := os.Open(os.DevNull)
	defer devnull.Close()
	p, err := sandbox.Start(sandbox.Options{
		Exe:   exe,
		Args:  []string{"pid1", "-test.run=^$"},
		Env:   append(os.Environ(), scenarioEnv+"="+name),
		Files: []*os.File{devnull, os.Stderr, os.Stderr, w},
	})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan unix.WaitStatus, 1)
	go func() {
		ws, _, _ := p.Wait()
		done <- ws
	}()
	var ws unix.WaitStatus
	select {
	case ws = <-done:
	case <-time.After(60 * time.Second):
		p.Signal(syscall.SIGKILL)
		t.Fatalf("scenario %s: PID 1 still running after 60s", name)
	}
	var es []event.Event
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var e event.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%q: %v", sc.Bytes(), err)
		}
		es = append(es, e)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, e := range es {
				t.Logf("%s", e.AppendJSON(nil))
			}
		}
	})
	return es, ws
}

func kinds(es []event.Event) string {
	var s []string
	for _, e := range es {
		k := string(e.Kind)
		if e.Step != "" {
			k += ":" + e.Step
		}
		s = append(s, k)
	}
	return strings.Join(s, " ")
}

// TestRebootFails: reboot(2) that keeps failing is tried three times, a
// second apart, then the sequence freezes; it never makes PID 1 exit.
func TestRebootFails(t *testing.T) {
	es, ws := runScenario(t, "reboot-fails")
	var attempts []int64
	frozen := false
	for _, e := range es {
		if e.Kind == event.Error && e.Step == "reboot" {
			if strings.Contains(e.Err, "frozen") {
				frozen = true
			} else {
				attempts = append(attempts, e.Mono)
			}
		}
	}
	if len(attempts) != 3 || !frozen {
		t.Fatalf("%d failed attempts, frozen %v; events: %s", len(attempts), frozen, kinds(es))
	}
	for i := 1; i < len(attempts); i++ {
		if d := time.Duration(attempts[i] - attempts[i-1]); d < 900*time.Millisecond {
			t.Errorf("attempt %d only %v after the one before, want a second", i+1, d)
		}
	}
	if last := es[len(es)-1]; last.Msg != "done" || last.Phase != "frozen" {
		t.Errorf("last event %+v", last)
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		t.Errorf("the harness's PID 1 ended %v", ws)
	}
}

// TestSyncHangs: a sync that outlives its deadline is reported as a timeout,
// the sequence goes on to remount and reboot, and the late result, when it
// comes, is dropped.
func TestSyncHangs(t *testing.T) {
	es, _ := runScenario(t, "sync-hangs")
	var steps []string
	for _, e := range es {
		if e.Kind == event.Sync {
			steps = append(steps, e.Step)
		}
	}
	if strings.Join(steps, " ") != "start timeout" {
		t.Fatalf("sync steps %q, want start then timeout, and no end after it; events: %s", steps, kinds(es))
	}
	reboot := false
	for _, e := range es {
		if e.Kind == event.Reboot {
			reboot = strings.Contains(e.Err, "sync: timed out")
		}
	}
	if !reboot {
		t.Errorf("the reboot event does not sum up the sync timeout; events: %s", kinds(es))
	}
}

// TestKillDeadline: a process still dying when the kill deadline expires is
// named in an error, and the sequence goes on to sync and reboot(2) (which
// ends the namespace: SIGINT).
func TestKillDeadline(t *testing.T) {
	es, ws := runScenario(t, "kill-deadline")
	named := false
	for _, e := range es {
		if e.Kind == event.Error && e.Step == "kill" {
			named = strings.Contains(e.Err, "survived SIGKILL")
		}
	}
	if !named {
		t.Errorf("no error names the process that outlived the kill deadline; events: %s", kinds(es))
	}
	if !ws.Signaled() || ws.Signal() != unix.SIGINT {
		t.Errorf("PID 1 ended %v, want by reboot(POWER_OFF) (SIGINT)", ws)
	}
}

// TestEmergency: a panic in PID 1 goes to sync and reboot(2), never to an
// exit.
func TestEmergency(t *testing.T) {
	_, ws := runScenario(t, "panic")
	if !ws.Signaled() || ws.Signal() != unix.SIGINT {
		t.Fatalf("PID 1 ended %v (exit status %d), want by reboot(POWER_OFF) (SIGINT)", ws, ws.ExitStatus())
	}
}
