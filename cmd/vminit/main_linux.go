package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vminit/vminit/internal/demo"
)

// signals receives every catchable signal. A Go PID 1 with no handler for
// SIGTERM, SIGHUP, SIGQUIT, SIGPIPE (and the others in fatal) exits with
// status 2, or crashes, on the first one, and the kernel panics ("Attempted
// to kill init"). Those, and the ones that must not be lost (shutdown
// requests, SIGCHLD), are caught in package initialisation, the earliest
// point Go offers; the buffer holds what arrives until the event loop drains
// it. The rest, which Go ignores until told otherwise, are caught once the
// workload runs (lateSignals): each one costs a round trip to the runtime's
// signal thread, and 61 of them delayed the workload's start by 5 ms.
var signals = make(chan os.Signal, 128)

// fatal lists the signals that end a Go program that does not catch them
// (runtime/sigtab_linux_generic.go: _SigKill, _SigThrow, and _SigPanic when
// sent by kill), SIGPIPE, the shutdown triggers and SIGCHLD.
var fatal = []os.Signal{
	syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGILL, syscall.SIGTRAP,
	syscall.SIGABRT, syscall.SIGBUS, syscall.SIGFPE, syscall.SIGSEGV, syscall.SIGPIPE,
	syscall.SIGTERM, syscall.SIGSTKFLT, syscall.SIGSYS, syscall.SIGPWR, syscall.SIGCHLD,
}

// lateSignals catches every other catchable signal, so that it is logged.
func lateSignals() { signal.Notify(signals, catchable()...) }

func init() {
	signal.Notify(signals, fatal...)
	if os.Getpid() == 1 {
		// Package initialisation runs on the main thread: a re-execution
		// from any other would make that thread the leader and lose the
		// parent-death signal, which is the leader's (a sandbox would
		// outlive its parent).
		initSignalErr = cleanSignals()
	}
}

// initSignalErr is what cleanSignals could not do, reported once logging
// works.
var initSignalErr error

// catchable lists signals 1 to 64 but SIGKILL and SIGSTOP (which cannot be
// caught) and SIGURG (the runtime's own preemption signal, ignored by
// default anyway). Notify never sets SIG_IGN, so children start with default
// dispositions: an ignored signal would survive exec.
func catchable() []os.Signal {
	var sigs []os.Signal
	for n := syscall.Signal(1); n <= 64; n++ {
		if n != syscall.SIGKILL && n != syscall.SIGSTOP && n != syscall.SIGURG {
			sigs = append(sigs, n)
		}
	}
	return sigs
}

// commands are the subcommands. They exist only when vminit is not PID 1:
// as init, every argument belongs to the configuration and the workload.
var commands = map[string]func(args []string) int{
	"sandbox": sandboxCommand,
	"demo":    demoCommand,
	"help":    helpCommand,
	"-h":      helpCommand,
	"--help":  helpCommand,
	demo.Role: demo.Main,
}

func main() {
	if os.Getpid() != 1 && len(os.Args) > 1 {
		if cmd, ok := commands[os.Args[1]]; ok {
			os.Exit(cmd(os.Args[2:]))
		}
		if a := os.Args[1]; !strings.HasPrefix(a, "-") && !strings.Contains(a, "/") {
			fmt.Fprintf(os.Stderr, "vminit: unknown command %q (commands: sandbox, demo, help)\n", a)
			os.Exit(exitUsage)
		}
	}
	runInit(os.Args[1:])
}

func helpCommand([]string) int {
	fmt.Print(`vminit: a lean PID 1 for microVMs.

As init (PID 1 of a VM):
  vminit [FLAGS] [--] [WORKLOAD [ARGS...]]
Flags and kernel command line keys:
` + usage(onInit) + `
On this machine, as PID 1 of new user, PID and mount namespaces:
  vminit sandbox [FLAGS] -- COMMAND [ARGS...]
` + usage(onSandbox) + `
  vminit demo    the sandbox with a demo process tree, shut down after a second
`)
	return 0
}
