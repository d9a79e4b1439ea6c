// Command strategy is PID 1 for the shutdown benchmark's reference
// strategies, the designs vminit is measured against. The benchmark (bench/)
// starts it with internal/sandbox, as PID 1 of new user, PID and mount
// namespaces, exactly as it starts vminit, and triggers each the same way:
// SIGTERM to PID 1.
//
//	strategy -s floor|polled|signalfd [-grace D] [-kill-timeout D] [-report-fd FD] -- COMMAND [ARGS...]
//
// The strategies, from the trigger on:
//
//	floor     kill(-1, SIGTERM); a blocking wait4(-1) until ECHILD, with
//	          kill(-1, SIGKILL) at the grace; sync; reboot. The least work
//	          an init can do: no process can be reaped sooner.
//	polled    the design vminit replaces, step by step: kill(-1, SIGTERM)
//	          (no SIGCONT); waitpid(-1, WNOHANG) in a loop, sleeping 100 ms
//	          whenever no child has exited, until ECHILD or the grace;
//	          kill(-1, SIGKILL); the same loop for at most 500 ms; sync;
//	          reboot.
//	signalfd  the textbook event loop: SIGCHLD blocked on a LockOSThread-ed
//	          thread and read from a signalfd in an epoll set, each wake-up
//	          draining waitpid(-1, WNOHANG); SIGTERM to all, a timerfd for
//	          the grace, SIGKILL, a timerfd for the kill timeout; sync;
//	          reboot. The Go runtime unblocks SIGCHLD on its own threads, so
//	          some SIGCHLDs never reach the signalfd: exits that only the
//	          grace timer's drain finds are counted as lost wake-ups.
//
// Its contract:
//   - It acts only as PID 1 of a sandbox (internal/guard.Check reports
//     guard.Sandbox): it calls kill(-1) and reboot(2), which on a host would
//     be ruinous. Anything else is refused with exit status 1 before it
//     mounts or signals anything.
//   - Like vminit in a sandbox, it makes the mount namespace private and
//     mounts a /proc of its PID namespace; it remounts nothing.
//   - It starts COMMAND with descriptors 0, 1 and 2, in a session of its
//     own, and never writes to them.
//   - Just before reboot(2) it writes one JSON line to the report descriptor
//     (CLOCK_MONOTONIC nanoseconds): trigger_ns, term_ns, grace_end_ns,
//     kill_ns (0 if no SIGKILL was sent), done_ns (the wait ended), sync_ns
//     (sync returned), reaped (processes reaped after the trigger), lost,
//     unseen (signalfd: exits no siginfo named, coalescing included),
//     wakeups, sleeps (polled), left (processes given up on).
//   - It ends by reboot(2), which the host sees as PID 1 killed by SIGINT;
//     if reboot(2) fails it exits 1 (it is PID 1 of a sandbox only, whose
//     end takes the namespace with it).
package main
