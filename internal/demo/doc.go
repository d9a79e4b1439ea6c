// Package demo is the process tree that `vminit demo` shuts down: the kinds
// of processes an init meets at shutdown, each a copy of the vminit binary
// started as `vminit _demo ROLE`, named after its role so that the timeline
// reads well.
//
//	tree         the workload: starts the others, exits on SIGTERM
//	worker-N     exits promptly on SIGTERM, after N×15 ms of clean-up
//	stubborn     ignores SIGTERM: it is SIGKILLed when the grace expires
//	paused       stopped (SIGSTOP) before the shutdown: runs its SIGTERM
//	             handler once SIGCONT arrives
//	daemon       double-forked, so an orphan adopted by PID 1: exits on SIGTERM
package demo

// Role is the hidden subcommand that runs a demo process.
const Role = "_demo"

// StartEnv names the environment variable that holds the demo's start
// (CLOCK_MONOTONIC nanoseconds), so that the processes' lines carry the same
// times as the sandbox's timeline.
const StartEnv = "VMINIT_DEMO_START"

// Banner introduces the demo; it takes how the shutdown is requested and the
// grace.
const Banner = `vminit demo: vminit runs as PID 1 of new user, PID and mount namespaces with a
process tree of 3 workers (exit on SIGTERM), one stubborn process (ignores
SIGTERM), one stopped process (SIGSTOP) and one double-forked daemon.
Shutdown: %s, with a %v grace.

`
