//go:build !linux

package event

import "time"

var start = time.Now()

// monotonic has no CLOCK_MONOTONIC to read off Linux: it counts from the
// process's start, which is enough for the host tool's own timings.
func monotonic() int64 { return int64(time.Since(start)) }
