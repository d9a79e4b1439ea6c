package event

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Timeline follows a shutdown's events and sums it up: the phases and how
// long each took, who exited, who had to be killed, and the total from
// trigger to reboot. The sandbox and the host tool print it.
type Timeline struct {
	Source    string // what triggered the shutdown
	Trigger   int64  // CLOCK_MONOTONIC of each step, 0 if not seen
	SigTerm   int64
	Expired   int64 // grace expired
	SigKill   int64
	SyncStart int64
	SyncEnd   int64
	Reboot    int64
	Command   string

	Reaped         int    // processes reaped after the trigger
	LastExit       int64  // the last one, before any SIGKILL
	Killed         []Proc // survivors of the grace
	Workload       bool   // the workload's exit was seen
	WorkloadStatus int
	Remounts       int // filesystems made read-only
	Errors         []string
}

// Add takes the next event.
func (t *Timeline) Add(e Event) {
	switch e.Kind {
	case Trigger:
		t.Trigger, t.Source = e.Mono, e.Source
	case SigTerm:
		t.SigTerm = e.Mono
	case Reaped:
		if t.Trigger != 0 {
			t.Reaped++
			if t.Expired == 0 {
				t.LastExit = e.Mono
			}
		}
	case GraceExpired:
		t.Expired, t.Killed = e.Mono, e.Survivors
	case SigKill:
		t.SigKill = e.Mono
	case Sync:
		switch e.Step {
		case "start":
			t.SyncStart = e.Mono
		default:
			t.SyncEnd = e.Mono
		}
	case Remount:
		if e.ReadOnly {
			t.Remounts++
		}
	case WorkloadExit:
		t.Workload, t.WorkloadStatus = true, e.Status
	case Reboot:
		t.Reboot, t.Command = e.Mono, e.Command
	}
	if e.Err != "" && (e.Level == "ERROR" || e.Kind == Error && e.Level == "") {
		t.Errors = append(t.Errors, e.Err)
	}
}

// Done reports whether the reboot event was seen.
func (t *Timeline) Done() bool { return t.Reboot != 0 }

// Graceful reports whether every process exited on SIGTERM.
func (t *Timeline) Graceful() bool { return t.SigKill == 0 }

// Total is the time from trigger to the reboot event.
func (t *Timeline) Total() time.Duration {
	if t.Trigger == 0 || t.Reboot == 0 {
		return 0
	}
	return time.Duration(t.Reboot - t.Trigger)
}

// A Phase is one stretch of the sequence.
type Phase struct {
	Name string
	Dur  time.Duration
}

// Phases returns the phases seen, in order.
func (t *Timeline) Phases() []Phase {
	var ps []Phase
	add := func(name string, from, to int64) {
		if from != 0 && to != 0 {
			ps = append(ps, Phase{name, time.Duration(to - from)})
		}
	}
	waitEnd := t.SyncStart
	if t.Expired != 0 {
		waitEnd = t.Expired
	}
	add("trigger → SIGTERM", t.Trigger, t.SigTerm)
	if t.Expired != 0 {
		add("wait for exits (grace expired)", t.SigTerm, waitEnd)
		add("SIGKILL → all reaped", t.SigKill, t.SyncStart)
	} else {
		add("wait for exits (all gone)", t.SigTerm, waitEnd)
	}
	add("sync", t.SyncStart, t.SyncEnd)
	add("remount read-only", t.SyncEnd, t.Reboot)
	return ps
}

// WriteSummary writes the summary as text.
func (t *Timeline) WriteSummary(w io.Writer) {
	if t.Trigger == 0 {
		fmt.Fprintln(w, "no shutdown was triggered")
		return
	}
	fmt.Fprintf(w, "shutdown (%s): ", t.Source)
	switch {
	case t.Reaped == 0:
		fmt.Fprint(w, "no process was left to stop")
	case len(t.Killed) > 0:
		names := make([]string, len(t.Killed))
		for i, p := range t.Killed {
			names[i] = p.String()
		}
		fmt.Fprintf(w, "%s reaped, %d SIGKILLed at the grace: %s", plural(t.Reaped, "process", "processes"), len(t.Killed), strings.Join(names, ","))
	case t.Expired == 0:
		fmt.Fprintf(w, "%s reaped, all exited on SIGTERM", plural(t.Reaped, "process", "processes"))
	default:
		fmt.Fprintf(w, "%s reaped", plural(t.Reaped, "process", "processes"))
	}
	fmt.Fprintln(w)
	for _, p := range t.Phases() {
		note := ""
		if strings.HasPrefix(p.Name, "remount") && t.Remounts > 0 {
			note = fmt.Sprintf("  (%d read-only)", t.Remounts)
		}
		fmt.Fprintf(w, "  %-32s %10s%s\n", p.Name, Round(p.Dur), note)
	}
	if t.Done() {
		fmt.Fprintf(w, "  %-32s %10s\n", "total: trigger → reboot("+t.Command+")", Round(t.Total()))
	} else {
		fmt.Fprintln(w, "  the sequence did not reach reboot")
	}
	for _, e := range t.Errors {
		fmt.Fprintf(w, "  error: %s\n", e)
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// Round rounds d for display: microseconds below 10 ms, then 0.1 ms.
func Round(d time.Duration) time.Duration {
	if d < 10*time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(100 * time.Microsecond)
}
