// Command vminit is a lean PID 1 for latency-sensitive microVMs.
//
// As PID 1 it mounts the basic filesystems where they are missing, turns
// Ctrl-Alt-Del into SIGINT, starts the workload, reaps every process that
// ends up as its child, and shuts the VM down on SIGTERM, SIGINT, SIGPWR or
// the workload's exit: SIGTERM and SIGCONT to every process, an event-driven
// wait until none is left or the grace expires, SIGKILL, reap, sync, remount
// read-only, reboot(2).
//
// Its contract:
//   - It never exits and never returns from main while it is PID 1: a failed
//     step is reported and the sequence goes on to reboot(2); if reboot(2)
//     itself fails, PID 1 keeps reaping and logs why.
//   - It acts as init only as PID 1 of the initial PID namespace (a VM) or of
//     a PID namespace under a non-initial user namespace (vminit sandbox).
//     Anything else, a run by hand or unshare -pf as root, is refused with a
//     message and exit status 1 before it mounts or signals anything.
//   - Children start with default signal dispositions and an empty signal
//     mask.
//   - Every step is an event (docs/events.md), logged human-readably or as
//     JSON lines (vminit.json=true).
//
// Usage:
//
//	vminit [FLAGS] [--] [WORKLOAD [ARGS...]]    as PID 1
//	vminit sandbox [FLAGS] -- COMMAND [ARGS...] as PID 1 of new namespaces
//	vminit demo                                 the sandbox on a demo process tree
//
// vminit sandbox exits with the workload's status (0-255, 128+N for a signal)
// when the sequence reached reboot(2); 125 when PID 1 ended without reaching
// it or the sandbox could not start; 127 (126) when the workload could not be
// found (executed); 2 for a usage error.
package main
