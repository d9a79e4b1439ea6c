package event

import "time"

// The process's CLOCK_MONOTONIC reading at start, and the time.Time taken at
// the same moment. Go's time.Time carries a monotonic reading (the same
// clock, but relative to an unspecified origin); the pair converts between
// the two without a system call per event.
var (
	mono0 = monotonic()
	time0 = time.Now()
)

// Now returns CLOCK_MONOTONIC in nanoseconds.
func Now() int64 { return Mono(time.Now()) }

// Mono converts a time.Time taken in this process (with its monotonic
// reading) to CLOCK_MONOTONIC nanoseconds.
func Mono(t time.Time) int64 { return mono0 + int64(t.Sub(time0)) }

// Time converts CLOCK_MONOTONIC nanoseconds to a time.Time that carries a
// monotonic reading, so that Mono(Time(ns)) == ns.
func Time(ns int64) time.Time { return time0.Add(time.Duration(ns - mono0)) }
