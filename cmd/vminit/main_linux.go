package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vminit/vminit/internal/demo"
)

// signals receives every catchable signal from the moment the program
// starts. A Go PID 1 with no handler for SIGTERM, SIGHUP, SIGQUIT or SIGPIPE
// exits with status 2 on the first one, and the kernel panics ("Attempted to
// kill init"). Package initialisation is the earliest point Go offers; the
// buffer holds what arrives until the event loop drains it.
var signals = make(chan os.Signal, 128)

func init() {
	signal.Notify(signals, catchable()...)
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
