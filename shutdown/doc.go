// Package shutdown owns the end of every process in a VM: the [Reaper] that
// is the single owner of wait4(2) for PID 1, and the [Sequence] that ends a
// VM when asked: SIGTERM and SIGCONT to all, wait (event-driven) until no
// process is left or the grace expires, SIGKILL, reap, sync, remount
// read-only, reboot(2).
//
// Both run on the goroutine of a [loop.Loop] and are advanced by its events:
// SIGCHLD wake-ups, timerfd deadlines and the completion of blocking work
// (sync, remount) that runs on a worker goroutine under a deadline, so that
// a hung disk delays power-off by a bounded time, never forever.
//
// What the package promises:
//   - Every wake-up drains wait4(-1, WNOHANG|__WALL) until it reports nothing
//     or ECHILD; SIGCHLDs are never counted.
//   - The wait for processes ends the moment wait4 reports ECHILD.
//   - A step that fails is reported as an event and collected; it never
//     stops the sequence from reaching reboot(2). If reboot(2) returns, the
//     sequence retries, then freezes: it never makes PID 1 exit.
package shutdown
