package event

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Printer shows a stream of events to a person, one line each: the time
// since Start (CLOCK_MONOTONIC of the same machine; 0 means the first
// event's), then, from the trigger on, the time since the trigger, the kind
// and the fields.
//
//	1.010s        +0s  trigger        source=SIGTERM
//	1.011s     +383µs  sigterm        grace=1s
type Printer struct {
	Out     io.Writer
	Start   int64
	trigger int64
}

// Header prints the columns' names.
func (p *Printer) Header() {
	fmt.Fprintf(p.Out, "%9s %10s  %-14s %s\n", "time", "+trigger", "event", "details")
}

// Print prints one event.
func (p *Printer) Print(e Event) {
	if p.Start == 0 {
		p.Start = e.Mono
	}
	if e.Kind == Trigger {
		p.trigger = e.Mono
	}
	since := ""
	if p.trigger != 0 {
		since = "+" + Round(time.Duration(e.Mono-p.trigger)).String()
	}
	kind := string(e.Kind)
	if e.Kind == Log && e.Level != "" && e.Level != "INFO" {
		kind = "log " + e.Level
	}
	line := fmt.Sprintf("%8.3fs %10s  %-14s %s", float64(e.Mono-p.Start)/1e9, since, kind, e.String())
	fmt.Fprintln(p.Out, strings.TrimRight(line, " "))
}
