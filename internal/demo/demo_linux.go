package demo

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Main runs the demo process named by args[0] and returns its exit status.
func Main(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "demo: no role")
		return 2
	}
	role := args[0]
	name := role
	if role == "worker" && len(args) > 1 {
		name = "worker-" + args[1]
	}
	// /proc/self/comm names the thread group leader, whichever thread
	// writes it.
	_ = os.WriteFile("/proc/self/comm", []byte(name), 0)

	term := make(chan os.Signal, 1)
	switch role {
	case "tree":
		signal.Notify(term, syscall.SIGTERM)
		for i := 1; i <= 3; i++ {
			spawn("worker", strconv.Itoa(i))
		}
		spawn("stubborn")
		spawn("paused")
		spawn("daemon-launcher")
		say(name, "started the tree; waiting for SIGTERM")
		<-term
		say(name, "SIGTERM: exiting")
		return 0
	case "worker":
		signal.Notify(term, syscall.SIGTERM)
		n, _ := strconv.Atoi(args[1])
		<-term
		time.Sleep(time.Duration(n) * 15 * time.Millisecond)
		say(name, "SIGTERM: cleaned up, exiting")
		return 0
	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
		for {
			_ = unix.Pause()
		}
	case "paused":
		signal.Notify(term, syscall.SIGTERM)
		say(name, "stopping myself (SIGSTOP)")
		_ = unix.Kill(os.Getpid(), unix.SIGSTOP)
		<-term
		say(name, "continued; SIGTERM handled, exiting")
		return 0
	case "daemon-launcher":
		spawn("daemon")
		return 0 // the daemon is orphaned and adopted by PID 1
	case "daemon":
		signal.Notify(term, syscall.SIGTERM)
		<-term
		say(name, "SIGTERM: exiting")
		return 0
	}
	fmt.Fprintf(os.Stderr, "demo: unknown role %q\n", role)
	return 2
}

// spawn starts another demo process. It is never waited for: the tree exits
// first, and PID 1's reaper collects everything.
func spawn(args ...string) {
	argv := append([]string{"vminit", Role}, args...)
	_, err := syscall.ForkExec("/proc/self/exe", argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: start %v: %v\n", args, err)
	}
}

func say(name, msg string) {
	at := ""
	if start, err := strconv.ParseInt(os.Getenv(StartEnv), 10, 64); err == nil {
		var ts unix.Timespec
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		at = fmt.Sprintf("%8.3fs", float64(ts.Nano()-start)/1e9)
	}
	fmt.Printf("%s %12s %s[%d]: %s\n", at, "|", name, os.Getpid(), msg)
}
