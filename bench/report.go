package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// writeReport writes the tables, the other measurements and the targets as
// Markdown (readable as plain text too).
func writeReport(w io.Writer, res *Result) {
	rs := rows(res.Samples)
	m := res.Machine
	fmt.Fprintf(w, "# Shutdown latency: matrix %q, %s\n\n", res.Matrix.Name, res.Started.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "`%s`: %s, %d CPUs, %d MiB, Linux %s, %s; %d host processes; load %.2f before, %.2f after.",
		res.Command, m.CPU, m.CPUs, m.MemoryMiB, m.Kernel, m.Go, m.Processes, m.LoadBefore[0], m.LoadAfter[0])
	if m.Note != "" {
		fmt.Fprintf(w, " %s", m.Note)
	}
	fmt.Fprint(w, "\n\nLatency is trigger (SIGTERM to PID 1 from the harness) → PID 1 seen ended by reboot(2), in ms. ")
	fmt.Fprint(w, "÷ floor compares medians. graceful: fewest SIGTERM handlers finished in a run / processes with one. ")
	fmt.Fprint(w, "lost: exits no wake-up reported (found only at a deadline), summed over runs. CPU/reaped: PID 1's own CPU time from trigger to its end ÷ processes it reaped, median, µs.\n")

	for _, sc := range scenarios {
		var cells []*row
		for _, r := range rs {
			if r.Scenario == sc.name {
				cells = append(cells, r)
			}
		}
		if len(cells) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n## %s: %s (grace %s)\n\n", sc.name, sc.doc, graces(res, sc.name))
		fmt.Fprintln(w, "| N | strategy | runs | median | p95 | max | ÷ floor | polled ÷ vminit | graceful | lost | CPU/reaped µs | SIGKILL − deadline ms |")
		fmt.Fprintln(w, "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
		for _, r := range cells {
			f := find(rs, r.Scenario, r.N, "floor")
			floorRatio := math.NaN()
			if f != nil {
				floorRatio = ratio(r.Latency.Median, f.Latency.Median)
			}
			pv := ""
			if r.Strategy == "vminit" {
				if p := find(rs, r.Scenario, r.N, "polled"); p != nil {
					pv = fixed(ratio(p.Latency.Median, r.Latency.Median), 1)
				}
			}
			runs := fmt.Sprint(r.Runs)
			if r.Failed > 0 {
				runs = fmt.Sprintf("%d (%d failed)", r.Runs, r.Failed)
			}
			fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %s | %s | %d/%d | %d | %s | %s |\n",
				r.N, r.Strategy, runs, ms(r.Latency.Median), ms(r.Latency.P95), ms(r.Latency.Max),
				fixed(floorRatio, 2), pv, r.GracefulMin, r.GracefulWant, r.Lost, fixed(r.CPUPerReaped.Median, 1), ms(r.KillLateMax))
		}
		for _, r := range cells {
			if r.Strategy != "polled" || r.Runs-r.Failed == 0 {
				continue
			}
			fmt.Fprintf(w, "\npolled N=%d: %d runs never slept (median %s ms), %d slept at least once (median %s ms).",
				r.N, len(r.NoSleep), ms(distOf(r.NoSleep).Median), len(r.Slept), ms(distOf(r.Slept).Median))
		}
		fmt.Fprintln(w)
	}

	writeBreakdown(w, res)

	fmt.Fprint(w, "\n## Per strategy, all runs\n\n")
	fmt.Fprintln(w, "| strategy | runs | failed | start → workload exec ms (median / p95) | PID 1 peak RSS MiB (VmHWM, max) | lost | signalfd: exits no siginfo named |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|")
	for _, st := range strategyNames {
		var start []float64
		var runs, failed, lost, unseen int
		var rss int64
		for _, s := range res.Samples {
			if s.Strategy != st {
				continue
			}
			rss = max(rss, s.HWM, s.PeakRSS)
			if s.Probe {
				continue
			}
			runs++
			if !s.OK {
				failed++
				continue
			}
			if s.StartToExec > 0 {
				start = append(start, float64(s.StartToExec)/1e6)
			}
			lost += s.Lost
			unseen += s.Unseen
		}
		if runs == 0 {
			continue
		}
		d := distOf(start)
		u := "–"
		if st == "signalfd" {
			u = fmt.Sprint(unseen)
		}
		fmt.Fprintf(w, "| %s | %d | %d | %s / %s | %.1f | %d | %s |\n", st, runs, failed, ms(d.Median), ms(d.P95), float64(rss)/1024, lost, u)
	}
	fmt.Fprintf(w, "\nstart → workload exec includes the launcher's own %s ms (sandbox start → a static C program's main as PID 1, median).\n", ms(float64(res.SandboxStart)/1e6))
	b := res.Binaries
	if b.Commit != "" {
		fmt.Fprintf(w, "\nBuilt from %s.", b.Commit)
	}
	fmt.Fprintf(w, "\nBinaries: vminit %d bytes (static %v, stripped), strategy %d bytes, worker %d bytes (static %v).\n",
		b.Vminit, b.VminitStatic, b.Strategy, b.Worker, b.WorkerStatic)

	fmt.Fprint(w, "\n## Targets\n\n")
	fmt.Fprintln(w, "| target | want | measured | status |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, t := range evaluate(res, rs) {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", t.Name, t.Want, t.Measured, t.Status)
	}

	var failures []string
	for _, s := range res.Samples {
		if !s.OK {
			failures = append(failures, fmt.Sprintf("- %s N=%d %s run %d: %s", s.Scenario, s.N, s.Strategy, s.Rep, s.Err))
		}
	}
	if len(failures) > 0 {
		fmt.Fprintf(w, "\n## Failed runs\n\n%s\n", strings.Join(failures, "\n"))
	}
}

// graces describes the grace of a scenario's cells: "1s", or "1s; 10s at N=10000".
func graces(res *Result, scenario string) string {
	var parts []string
	var first time.Duration
	for _, c := range res.Matrix.Cells {
		if c.Scenario != scenario {
			continue
		}
		switch {
		case len(parts) == 0:
			first = c.Grace
			parts = append(parts, c.Grace.String())
		case c.Grace != first:
			parts = append(parts, fmt.Sprintf("%v at N=%d", c.Grace, c.N))
		}
	}
	return strings.Join(parts, "; ")
}

func fixed(x float64, prec int) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "–"
	}
	return fmt.Sprintf("%.*f", prec, x)
}

// writeBreakdown shows where the time goes in the "exit" scenario: the
// medians of each step, from the trigger.
func writeBreakdown(w io.Writer, res *Result) {
	type key struct {
		n        int
		strategy string
	}
	steps := map[key][6][]float64{}
	var keys []key
	for _, s := range res.Samples {
		if s.Scenario != "exit" || s.Probe || !s.OK {
			continue
		}
		k := key{s.N, s.Strategy}
		v, ok := steps[k]
		if !ok {
			keys = append(keys, k)
		}
		f := func(ns int64) float64 { return float64(ns) / 1e6 }
		for i, x := range []float64{f(s.TermSent), f(s.WaitDone - s.TermSent), f(s.Sync),
			f(s.Rebooting - s.WaitDone - s.Sync), f(s.Latency - s.Rebooting), f(s.Latency)} {
			v[i] = append(v[i], x)
		}
		steps[k] = v
	}
	if len(keys) == 0 {
		return
	}
	slices.SortFunc(keys, func(a, b key) int {
		if a.n != b.n {
			return a.n - b.n
		}
		return slices.Index(strategyNames, a.strategy) - slices.Index(strategyNames, b.strategy)
	})
	fmt.Fprint(w, "\n## Where the time goes (exit scenario, medians, ms)\n\n")
	fmt.Fprint(w, "SIGTERM sent: trigger → PID 1 has signalled all. wait: → no process left. sync: sync(2). ")
	fmt.Fprint(w, "before reboot: → PID 1 about to call reboot(2) (vminit: its read-only remounts). reboot → seen: reboot(2), the namespace's teardown, the harness waking. ")
	fmt.Fprint(w, "Medians of the steps need not add up to the median total.\n\n")
	fmt.Fprintln(w, "| N | strategy | SIGTERM sent | wait | sync | before reboot | reboot → seen | total |")
	fmt.Fprintln(w, "|--:|---|--:|--:|--:|--:|--:|--:|")
	for _, k := range keys {
		v := steps[k]
		fmt.Fprintf(w, "| %d | %s |", k.n, k.strategy)
		for _, xs := range v {
			fmt.Fprintf(w, " %s |", ms(distOf(xs).Median))
		}
		fmt.Fprintln(w)
	}
}
