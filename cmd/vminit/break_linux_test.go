package main

// Regression tests for defects found by trying to break vminit (the break
// branch): each test names the defect it guards against.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vminit/vminit/internal/event"
	"github.com/vminit/vminit/internal/testbin"
)

// startSandbox starts vminit sandbox --json with args and returns the
// command, a channel of the events it prints on stderr (closed at EOF), and
// its stdout.
func startSandbox(t *testing.T, args ...string) (*exec.Cmd, <-chan event.Event, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(bin.vminit, append([]string{"sandbox", "--json"}, args...)...)
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	evs := make(chan event.Event, 1024)
	go func() {
		defer close(evs)
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 8<<20)
		for sc.Scan() {
			var e event.Event
			if json.Unmarshal(sc.Bytes(), &e) == nil && e.Kind != "" {
				evs <- e
			}
		}
	}()
	return cmd, evs, &stderr
}

// waitFor reads events until one of kind arrives, or fails after limit.
func waitFor(t *testing.T, evs <-chan event.Event, kind event.Kind, limit time.Duration) []event.Event {
	t.Helper()
	var seen []event.Event
	deadline := time.After(limit)
	for {
		select {
		case e, ok := <-evs:
			if !ok {
				t.Fatalf("stdout closed before a %s event; saw %d events", kind, len(seen))
			}
			seen = append(seen, e)
			if e.Kind == kind {
				return seen
			}
		case <-deadline:
			t.Fatalf("no %s event within %v", kind, limit)
		}
	}
}

// exitWaiter waits for cmd once, on a goroutine; the returned function
// returns its exit code, or -1 if it is still running after limit.
func exitWaiter(cmd *exec.Cmd) func(limit time.Duration) int {
	done := make(chan int, 1)
	go func() {
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			done <- ee.ExitCode()
		} else if err != nil {
			done <- -2
		} else {
			done <- 0
		}
	}()
	code := -1
	return func(limit time.Duration) int {
		if code != -1 {
			return code
		}
		select {
		case code = <-done:
		case <-time.After(limit):
		}
		return code
	}
}

// waitExit waits for cmd up to limit and returns its exit code, -1 on a hang.
func waitExit(cmd *exec.Cmd, limit time.Duration) int { return exitWaiter(cmd)(limit) }

// TestBreakSandboxSIGHUP: the sandbox catches SIGHUP as a "shutdown
// request" but relays it verbatim, and PID 1 ignores SIGHUP (not a
// trigger). Closing the sandbox's terminal therefore does nothing, and it
// counts as the first request: the next SIGTERM (a service manager, a
// second thought) is taken as the "second request" and SIGKILLs the
// namespace, with no orderly shutdown and exit status 125.
func TestBreakSandboxSIGHUP(t *testing.T) {
	needRoot(t)
	dir := sharedDir(t)
	cmd, evs, stderr := startSandbox(t, "--grace=5s", "--", bin.testproc, "graceful", dir, "w")
	waitFor(t, evs, event.WorkloadStart, 20*time.Second)
	time.Sleep(200 * time.Millisecond) // let the workload install its handler
	wait := exitWaiter(cmd)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	code := wait(10 * time.Second)
	if code == -1 {
		t.Errorf("SIGHUP to the sandbox: no shutdown within 10s (PID 1 logged it as an ignored signal)")
		cmd.Process.Signal(syscall.SIGTERM)
		code = wait(20 * time.Second)
		t.Errorf("a SIGTERM after that: sandbox exit %d (want an orderly shutdown and 0)\n%s", code, stderr.String())
		if _, err := os.Stat(dir + "/w"); err != nil {
			t.Errorf("the workload never ran its SIGTERM handler: %v", err)
		}
		return
	}
	if code != 0 {
		t.Errorf("sandbox exit %d after SIGHUP, want an orderly shutdown and 0\n%s", code, stderr.String())
	}
}

// TestBreakStalledStdout: the sandbox reads the report pipe only as fast as
// it can print its events (on stderr, since they moved off stdout). With a stdout consumer that pauses (a
// pager, a slow pipe, a stopped reader) while PID 1 shuts down, PID 1's
// writer blocks on the full report pipe, the finish flush times out after
// FinishTimeout (1s), reboot(2) runs with the last events (workload_exit,
// reboot) still in PID 1's buffer, and the sandbox, once it reads again,
// reports a crash: exit 125 "PID 1 ended without reaching reboot(2)".
func TestBreakStalledStdout(t *testing.T) {
	needRoot(t)
	cmd := exec.Command(bin.vminit, "sandbox", "--json", "--", bin.testproc, "zombies", "3000")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var stderr bytes.Buffer
	cmd.Stderr, cmd.Stdout = w, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	inner := testbin.FirstChild(cmd.Process.Pid, 10*time.Second)
	if inner == 0 {
		t.Fatal("no PID 1")
	}
	// Do not read stdout until PID 1 (and so the namespace) is gone.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", inner))
		if err != nil || strings.Contains(string(b), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("PID 1 still running after 60s")
		}
	}
	out, _ := io.ReadAll(r)
	code := waitExit(cmd, 30*time.Second)
	var reboot, wexit bool
	for _, l := range bytes.Split(out, []byte("\n")) {
		var e event.Event
		if json.Unmarshal(l, &e) == nil {
			reboot = reboot || e.Kind == event.Reboot
			wexit = wexit || e.Kind == event.WorkloadExit
		}
	}
	if code != 0 || !reboot || !wexit {
		t.Errorf("sandbox exit %d (want 0); reboot event seen: %v; workload_exit seen: %v\nstderr: %s",
			code, reboot, wexit, stderr.String())
	}
}

// TestBreakNoFDLeakIntoWorkload: the workload should start with descriptors
// 0, 1 and 2 only. Descriptors that the sandbox's caller left open (without
// close-on-exec: a shell's redirection, a CI runner's pipe) pass through the
// sandbox and PID 1 into the workload and every process it starts.
func TestBreakNoFDLeakIntoWorkload(t *testing.T) {
	needRoot(t)
	dir := sharedDir(t)
	var extraFiles []*os.File
	for _, name := range []string{"leak-a", "leak-b"} {
		f, err := os.Create(dir + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		extraFiles = append(extraFiles, f)
	}
	cmd := exec.Command(bin.vminit, "sandbox", "--json", "--", bin.testproc, "fdlist", dir)
	cmd.ExtraFiles = extraFiles // fds 3 and 4 of the sandbox
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(cmd, 30*time.Second); code != 0 {
		t.Fatalf("sandbox exit %d\n%s", code, out.String())
	}
	got := readMark(t, dir, "fds")
	var leaked []string
	for _, l := range strings.Split(got, "\n") {
		if strings.Contains(l, "/leak-") {
			leaked = append(leaked, l)
		}
	}
	if len(leaked) > 0 {
		t.Errorf("the workload inherited the caller's descriptors:\n%s\n(all of its descriptors:\n%s)", strings.Join(leaked, "\n"), got)
	}
}

// TestBreakZombieCalledSurvivor: grace_expired names as "survivors" (and the
// summary as "SIGKILLed at the grace") processes that had already exited on
// SIGTERM but were not reaped yet because their parent had not waited for
// them. The listing includes every zombie in /proc.
func TestBreakZombieCalledSurvivor(t *testing.T) {
	needRoot(t)
	dir := sharedDir(t)
	r := sandboxRun(t, 60*time.Second, "--grace=1s", "--shutdown-after=300ms", "--",
		bin.testproc, "neglect", "graceful", dir, "child")
	r.timeline(t)
	if readMark(t, dir, "child") != "term" {
		t.Fatal("the child did not run its SIGTERM handler")
	}
	ge := r.one(t, event.GraceExpired)
	status := map[int]event.Event{}
	for _, e := range r.find(event.Reaped) {
		status[e.PID] = e
	}
	for _, p := range ge.Survivors {
		if e, ok := status[p.PID]; ok && e.Signal != "SIGKILL" {
			t.Errorf("survivor %v was reaped with status %d (%q): it had exited on its own, not been SIGKILLed", p, e.Status, e.Signal)
		}
	}
}

// TestBreakInheritedIgnoredSignal: "children start with default signal
// dispositions". The Go runtime installs no handler for signals 32-34
// (_SigSetStack: glibc's and musl's internal signals), so signal.Notify in
// vminit's init does not replace a SIG_IGN inherited for them, and exec
// passes SIG_IGN on. A sandbox started from a shell that ignores signal 34
// (SIGRTMIN to glibc programs) gives its workload signal 34 ignored. (In a VM
// the kernel starts init with default dispositions; the sandbox does not
// reset them.)
func TestBreakInheritedIgnoredSignal(t *testing.T) {
	needRoot(t)
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("needs bash to start the sandbox with signal 34 ignored")
	}
	dir := sharedDir(t)
	out, err := exec.Command(bash, "-c", `trap "" 34; exec "$0" sandbox --json -- "$1" sigstate "$2"`,
		bin.vminit, bin.testproc, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("sandbox: %v\n%s", err, out)
	}
	got := readMark(t, dir, "sigstate")
	if !strings.Contains(got, "SigIgn:\t0000000000000000") {
		t.Errorf("the workload's /proc/self/status:\n%s\nwant SigIgn 0 (bit 33 is signal 34)", got)
	}
}

// TestBreakEventTimesGoBackwards: graceExpired takes its timestamp, then
// drains the reaper (emitting reaped events stamped later), then emits
// grace_expired with the earlier timestamp. Processes that exit right at the
// grace boundary therefore appear as "reaped" before a grace_expired that is
// dated before them: mono_ns goes backwards in the stream, and the sandbox's
// timeline shows +500.8ms reaped, then +498.6ms grace_expired. 60 processes
// exit between 490 and 510 ms after SIGTERM, with a 500 ms grace; the run is
// repeated a few times since it depends on timing.
func TestBreakEventTimesGoBackwards(t *testing.T) {
	needRoot(t)
	args := []string{"--grace=500ms", "--shutdown-after=500ms", "--", bin.testproc, "exit", "0"}
	for i := 0; i < 60; i++ {
		args = append(args, "+", "slowterm", fmt.Sprint(494+i/6))
	}
	for attempt := 1; attempt <= 10; attempt++ {
		r := sandboxRun(t, 60*time.Second, args...)
		r.timeline(t)
		for i := 1; i < len(r.events); i++ {
			if prev, e := r.events[i-1], r.events[i]; e.Mono < prev.Mono {
				t.Fatalf("attempt %d: %s at %d follows %s at %d: mono_ns goes back %v",
					attempt, e.Kind, e.Mono, prev.Kind, prev.Mono, time.Duration(prev.Mono-e.Mono))
			}
		}
	}
}

// TestNoStdFDs: started with descriptors 0-2 closed, as PID 1 is when the
// kernel cannot open /dev/console, vminit reaches main (here, to refuse a run
// by hand with status 1). Before main, the Go runtime (runtime.checkfds)
// opens /dev/null for a closed descriptor 0, 1 or 2, and throws if /dev/null
// does not exist: no Go program can start with neither /dev/console (which
// the kernel opens for init) nor /dev/null in its root. The branch's test
// asked for exactly that, which Go cannot give; README's "Boot it as init"
// states the requirement instead, and the VM tests boot an initramfs with
// /dev/null only (no /dev/console). Here: a chroot holding vminit and a
// /dev/null node.
func TestNoStdFDs(t *testing.T) {
	needRoot(t)
	root := sharedDir(t)
	b, err := os.ReadFile(bin.vminit)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(root+"/vminit", b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(root+"/dev", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mknod(root+"/dev/null", syscall.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	pid, err := syscall.ForkExec("/vminit", []string{"/vminit", "--", "/bin/true"}, &syscall.ProcAttr{
		Files: []uintptr{^uintptr(0), ^uintptr(0), ^uintptr(0)},
		Sys:   &syscall.SysProcAttr{Chroot: root},
	})
	if err != nil {
		t.Fatal(err)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		t.Fatal(err)
	}
	if !ws.Exited() || ws.ExitStatus() != 1 {
		t.Errorf("vminit with 0-2 closed: exit status %d, want 1 (its own refusal)", ws.ExitStatus())
	}
}

// TestBreakInnerPID1Crash covers a promise no other test checks (it passes
// today): PID 1 ending without reaching reboot(2), here SIGKILLed from the
// host by its pid, makes the sandbox exit 125.
func TestBreakInnerPID1Crash(t *testing.T) {
	needRoot(t)
	cmd, evs, stderr := startSandbox(t, "--", bin.testproc, "forever")
	waitFor(t, evs, event.WorkloadStart, 20*time.Second)
	inner := testbin.FirstChild(cmd.Process.Pid, 10*time.Second)
	if inner == 0 {
		t.Fatal("no PID 1")
	}
	if err := syscall.Kill(inner, syscall.SIGKILL); err != nil { // our sandbox's PID 1, by pid
		t.Fatal(err)
	}
	for range evs {
	}
	if code := waitExit(cmd, 20*time.Second); code != 125 {
		t.Errorf("sandbox exit %d after its PID 1 was killed, want 125\n%s", code, stderr.String())
	}
}

// TestBreakRemountEmptySource: end to end, a workload that mounts a tmpfs
// with an empty source string makes the remount step fail as a whole
// ("mountinfo: malformed line") and remount nothing: not the tmpfs itself,
// and in a VM not the ext4 disks either. See
// shutdown.TestBreakMountinfoEmptySource.
func TestBreakRemountEmptySource(t *testing.T) {
	needRoot(t)
	dir := sharedDir(t)
	if err := os.Mkdir(dir+"/mnt", 0o777); err != nil {
		t.Fatal(err)
	}
	r := sandboxRun(t, 30*time.Second, "--", bin.testproc, "mountsrc", dir, "")
	r.timeline(t)
	for _, e := range r.find(event.Error) {
		t.Errorf("error event: step=%s %s", e.Step, e.Err)
	}
	found := false
	for _, e := range r.find(event.Remount) {
		found = found || e.Mount == dir+"/mnt" && e.ReadOnly
	}
	if !found {
		t.Errorf("the tmpfs at %s/mnt was not remounted read-only (%d remount events)", dir, len(r.find(event.Remount)))
	}
}
