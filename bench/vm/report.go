package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// stats is a set of measurements of one quantity.
type stats []time.Duration

func (s stats) summary() string {
	if len(s) == 0 {
		return "-"
	}
	v := slices.Clone(s)
	slices.Sort(v)
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	if len(v) == 1 {
		return fmt.Sprintf("%-9s (n=1)", fmtDur(med))
	}
	return fmt.Sprintf("%-9s (%s–%s, n=%d)", fmtDur(med), fmtDur(v[0]), fmtDur(v[len(v)-1]), len(v))
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	default:
		return fmt.Sprintf("%.0fms", float64(d)/1e6)
	}
}

// writeReport writes the measurements: per machine, boot times over every
// boot, and trigger → QEMU exit per scenario.
func writeReport(w io.Writer, results []*result) {
	var order []string
	for _, r := range results {
		if !slices.Contains(order, r.machine) {
			order = append(order, r.machine)
		}
	}
	fmt.Fprintln(w, "\nmeasured (median (min–max, n)); host times from QEMU's start, guest times on the guest's CLOCK_MONOTONIC:")
	for _, m := range order {
		var first, work, gFirst, gWork stats
		type row struct {
			name       string
			exit, seqT stats
		}
		var rows []*row
		byName := map[string]*row{}
		for _, r := range results {
			if r.machine != m || r.firstLine == 0 {
				continue
			}
			first = append(first, r.firstLine)
			gFirst = append(gFirst, time.Duration(r.guestFirst))
			if r.workload != 0 {
				work = append(work, r.workload)
				gWork = append(gWork, time.Duration(r.guestWorkload))
			}
			name := fmt.Sprintf("%d %s: %s → QEMU exit", r.s.id, r.s.name, r.s.trigger)
			if byName[name] == nil {
				byName[name] = &row{name: name}
				rows = append(rows, byName[name])
			}
			if d := r.triggerToExit(); d > 0 {
				byName[name].exit = append(byName[name].exit, d)
			}
			if d := r.tl.Total(); d > 0 {
				byName[name].seqT = append(byName[name].seqT, d)
			}
		}
		fmt.Fprintf(w, "%s:\n", m)
		fmt.Fprintf(w, "  %-60s %s\n", "QEMU start → vminit's first console line", first.summary())
		fmt.Fprintf(w, "  %-60s %s\n", "QEMU start → workload started (its console line)", work.summary())
		fmt.Fprintf(w, "  %-60s %s\n", "guest clock at vminit's first line", gFirst.summary())
		fmt.Fprintf(w, "  %-60s %s\n", "guest clock at workload start", gWork.summary())
		for _, r := range rows {
			fmt.Fprintf(w, "  %-60s %s   in the guest, trigger → reboot(2): %s\n", r.name, r.exit.summary(), r.seqT.summary())
		}
	}
	fmt.Fprintln(w, "  (a workload-exit trigger is timed from its console line reaching the host)")
}

// writeHostTimeline writes what the host saw of one boot.
func writeHostTimeline(w io.Writer, r *result) {
	fmt.Fprintf(w, "host timeline (%s), from QEMU's start:\n", r.machine)
	at := func(d time.Duration, what string) {
		if d > 0 {
			fmt.Fprintf(w, "  %8.3fs  %s\n", d.Seconds(), what)
		}
	}
	at(time.Nanosecond, "QEMU started")
	at(r.firstLine, fmt.Sprintf("vminit's first console line (guest clock %.3fs)", time.Duration(r.guestFirst).Seconds()))
	at(r.workload, fmt.Sprintf("workload started (guest clock %.3fs)", time.Duration(r.guestWorkload).Seconds()))
	at(r.triggerAt, "shutdown requested: "+r.s.trigger.String())
	reason := r.reason
	if reason == "" {
		reason = "no SHUTDOWN event"
	}
	at(r.exitAt, fmt.Sprintf("QEMU exited (QMP SHUTDOWN reason %s)", reason))
	if d := r.triggerToExit(); d > 0 {
		fmt.Fprintf(w, "  trigger → QEMU exit: %s (in the guest, trigger → reboot(2): %s)\n", fmtDur(d), fmtDur(r.tl.Total()))
	}
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+prefix)
}
