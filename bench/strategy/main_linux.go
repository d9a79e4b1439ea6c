package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vminit/vminit/internal/event"
	"github.com/vminit/vminit/internal/guard"
)

// trigger receives the shutdown request. It is registered before main runs:
// a Go PID 1 with no handler for SIGTERM exits on it.
var trigger = make(chan os.Signal, 1)

func init() {
	signal.Notify(trigger, unix.SIGTERM)
}

// config is what the flags say.
type config struct {
	strategy    string
	grace       time.Duration
	killTimeout time.Duration
	reportFD    int
	command     []string
}

// A strategy shuts the sandbox down. prepare runs before the workload is
// started, shutdown after: it waits for the trigger and returns once every
// process is reaped or given up on. sync and reboot are common.
type strategy interface {
	prepare() error
	shutdown(c *config, r *report)
}

var strategies = map[string]func() strategy{
	"floor":    func() strategy { return floor{} },
	"polled":   func() strategy { return polled{} },
	"signalfd": func() strategy { return &sigfd{} },
}

func parseFlags(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("strategy", flag.ContinueOnError)
	fs.StringVar(&c.strategy, "s", "", "floor, polled or signalfd")
	fs.DurationVar(&c.grace, "grace", 10*time.Second, "how long processes have after SIGTERM")
	fs.DurationVar(&c.killTimeout, "kill-timeout", 2*time.Second, "signalfd: how long to wait after SIGKILL")
	fs.IntVar(&c.reportFD, "report-fd", -1, "write the JSON report line to this inherited descriptor")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	c.command = fs.Args()
	if _, ok := strategies[c.strategy]; !ok {
		return nil, fmt.Errorf("unknown strategy %q (want floor, polled or signalfd)", c.strategy)
	}
	if len(c.command) == 0 {
		return nil, errors.New("no command")
	}
	return c, nil
}

func main() {
	c, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "strategy: %v\nusage: strategy -s floor|polled|signalfd [-grace D] [-kill-timeout D] [-report-fd FD] -- COMMAND [ARGS...]\n", err)
		os.Exit(2)
	}
	// Before anything else: this program calls kill(-1) and reboot(2).
	mode, err := guard.Check()
	if err == nil && mode != guard.Sandbox {
		err = fmt.Errorf("refusing to act as init in mode %s: the benchmark's strategies run only as PID 1 of a sandbox", mode)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "strategy: %v\n", err)
		os.Exit(1)
	}
	if c.reportFD >= 0 {
		unix.CloseOnExec(c.reportFD) // not for the workload
	}
	if err := privateProc(); err != nil {
		die(err)
	}
	s := strategies[c.strategy]()
	if err := s.prepare(); err != nil {
		die(err)
	}
	if err := start(c.command); err != nil {
		die(err)
	}
	var r report
	r.strategy = c.strategy
	s.shutdown(c, &r)
	unix.Sync()
	r.sync = event.Now()
	if c.reportFD >= 0 {
		_, _ = unix.Write(c.reportFD, r.appendJSON(nil))
	}
	err = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	die(os.NewSyscallError("reboot", err))
}

// die ends PID 1 of the sandbox, and with it the namespace, without reaching
// reboot(2): the harness sees an exit status, not SIGINT, and fails the run.
func die(err error) {
	fmt.Fprintf(os.Stderr, "strategy: %v\n", err)
	os.Exit(1)
}

// privateProc does what vminit does first in a sandbox: stop mount events
// propagating to and from the host, then mount a /proc of the new PID
// namespace over the host's.
func privateProc() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return os.NewSyscallError("mount / private", err)
	}
	return os.NewSyscallError("mount proc", unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""))
}

// start starts the workload as vminit does: fork and exec, descriptors 0-2,
// a session of its own, and its wait left to the strategy.
func start(argv []string) error {
	_, err := syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		return fmt.Errorf("start %s: %w", argv[0], err)
	}
	return nil
}

// kill sends sig to every process but PID 1. ESRCH means nobody is left.
func kill(sig unix.Signal) {
	if err := unix.Kill(-1, sig); err != nil && err != unix.ESRCH {
		fmt.Fprintf(os.Stderr, "strategy: kill(-1, %s): %v\n", unix.SignalName(sig), err)
	}
}

// report is the line written before reboot(2). Times are CLOCK_MONOTONIC
// nanoseconds.
type report struct {
	strategy                                    string
	trigger, term, graceEnd, kill, done, sync   int64
	reaped, lost, unseen, wakeups, sleeps, left int
}

func (r *report) appendJSON(b []byte) []byte {
	b = append(b, `{"strategy":`...)
	b = strconv.AppendQuote(b, r.strategy)
	for _, f := range []struct {
		k string
		v int64
	}{
		{"trigger_ns", r.trigger}, {"term_ns", r.term}, {"grace_end_ns", r.graceEnd},
		{"kill_ns", r.kill}, {"done_ns", r.done}, {"sync_ns", r.sync},
		{"reaped", int64(r.reaped)}, {"lost", int64(r.lost)}, {"unseen", int64(r.unseen)},
		{"wakeups", int64(r.wakeups)}, {"sleeps", int64(r.sleeps)}, {"left", int64(r.left)},
	} {
		b = append(b, ',', '"')
		b = append(b, f.k...)
		b = append(b, '"', ':')
		b = strconv.AppendInt(b, f.v, 10)
	}
	return append(b, '}', '\n')
}
