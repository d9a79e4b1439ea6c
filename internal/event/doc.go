// Package event is the one schema for everything vminit reports: the console
// log, the sandbox's report pipe, the control stream and the benchmark read
// and write the same [Event], as JSON lines or as human-readable lines.
//
// Every event carries a CLOCK_MONOTONIC timestamp in nanoseconds, comparable
// across processes of one machine (the sandbox, its PID 1 and a benchmark
// harness share the clock). docs/events.md describes the schema.
package event
