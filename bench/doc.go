// Command bench is vminit's shutdown-latency benchmark: how long a microVM's
// init takes from a shutdown request to reboot(2), against the polled design
// vminit replaces and against the floor (the least work an init can do), on
// the same machine in one run.
//
//	make bench        go run ./bench -matrix quick   (< 3 minutes on 2 cores)
//	make bench-full   go run ./bench -matrix full
//	go run ./bench -replot bench/results/FILE.json   redo a table and plot
//
// It needs root, a C compiler and the go command. It builds vminit as make
// build does, the reference strategies (bench/strategy) and the workload
// (bench/workload/worker.c), then runs every cell of the matrix: each
// strategy as PID 1 of new user, PID and mount namespaces started with
// internal/sandbox (root mapped to uid 65534), the worker as its only
// workload, which makes the scenario's N processes and reports ready. The
// harness then sends SIGTERM to PID 1 and measures the time until it sees
// PID 1 ended by reboot(2) (wait status SIGINT). Strategies run interleaved,
// in a shuffled order, run by run.
//
// Measured besides the latency, per run: the SIGTERM handlers that finished
// (the worker writes a record to a pipe from its handler), lost wake-ups
// (exits PID 1 found only at a deadline), PID 1's own CPU time from the
// trigger to its end (from a cgroup v2 that holds PID 1 alone), the time
// from the sandbox's start to the workload's main, when SIGKILL came after
// the grace deadline, and PID 1's peak RSS (VmHWM, polled until PID 1 ends
// in one extra probe run per strategy and cell). Binary sizes are recorded.
//
// Output: the table on stdout; results/MATRIX-STAMP.json (every sample and
// the machine), .md (the tables and the targets of issue 4, each met or
// missed) and .svg (latency against N, log-log). README.md shows a run.
//
// The harness stays off the CPUs while PID 1 works: records and events go to
// in-memory files (memfd) read before the trigger and after the end, and it
// waits in waitid(2). It signals only
// the PID 1 it started, by pid, and acts as init nowhere itself.
package main
