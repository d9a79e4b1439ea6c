package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// strategyNames are the PID 1 strategies, in table order.
var strategyNames = []string{"vminit", "floor", "polled", "signalfd"}

// onlyStrategies restricts the runs to some strategies.
func onlyStrategies(list string) error {
	var keep []string
	for _, st := range strategyNames {
		for _, w := range strings.Split(list, ",") {
			if strings.TrimSpace(w) == st {
				keep = append(keep, st)
			}
		}
	}
	if len(keep) == 0 {
		return fmt.Errorf("no strategy in %q (want some of %s)", list, strings.Join(strategyNames, ", "))
	}
	strategyNames = keep
	return nil
}

// A scenario is a population of processes at the moment of the trigger, as
// the worker (workload/worker.c) builds it.
type scenario struct {
	name string
	doc  string
	minN int // the smallest N the scenario makes sense for
}

var scenarios = []scenario{
	{"exit", "each process exits at once on SIGTERM", 1},
	{"random", "each exits 0-50 ms after SIGTERM", 1},
	{"ignore", "one ignores SIGTERM: SIGKILLed at the grace", 2},
	{"stopped", "every tenth is stopped (SIGSTOP) before the trigger", 2},
	{"daemon", "N-1 are double-forked daemons, orphans adopted by PID 1", 1},
	{"pagecache", "64 MiB written to the page cache just before the trigger", 1},
}

func lookupScenario(name string) (scenario, bool) {
	for _, s := range scenarios {
		if s.name == name {
			return s, true
		}
	}
	return scenario{}, false
}

// stoppedCount is how many processes the worker stops: numbers 1, 11, 21, ...
// of 0 to n-1.
func stoppedCount(scenario string, n int) int {
	if scenario != "stopped" || n < 2 {
		return 0
	}
	return (n-2)/10 + 1
}

// ignoredCount is how many processes have no SIGTERM handler.
func ignoredCount(scenario string, n int) int {
	if scenario == "ignore" && n >= 2 {
		return 1
	}
	return 0
}

// A cell is one scenario at one N, run Reps times by vminit and the floor,
// interleaved run by run with the others, which take part in the first
// PolledReps and SignalfdReps runs only: the targets compare vminit with the
// floor, and each of signalfd's lost wake-ups costs a whole grace.
type cell struct {
	Scenario     string        `json:"scenario"`
	N            int           `json:"n"`
	Reps         int           `json:"reps"`
	PolledReps   int           `json:"polled_reps"`
	SignalfdReps int           `json:"signalfd_reps"`
	Grace        time.Duration `json:"grace_ns"`
	KillTimeout  time.Duration `json:"kill_timeout_ns"`
	PagecacheMiB int           `json:"pagecache_mib,omitempty"`
	// Probe adds one run per strategy that polls PID 1's peak RSS (left
	// out of the latencies).
	Probe bool `json:"probe"`
}

func (c cell) String() string { return fmt.Sprintf("%s N=%d", c.Scenario, c.N) }

// reps returns how many runs the strategy makes in the cell.
func (c cell) reps(strategy string) int {
	switch strategy {
	case "vminit-b":
		return c.Reps
	case "polled":
		return min(c.Reps, c.PolledReps)
	case "signalfd":
		return min(c.Reps, c.SignalfdReps)
	}
	return c.Reps
}

// A matrix is what one invocation runs.
type matrix struct {
	Name  string `json:"name"`
	Cells []cell `json:"cells"`
}

// grace is the grace the benchmark gives at n processes: 1 s, as the issue
// sets for the straggler scenario; 10 s at 10000 processes, so that a loaded
// machine cannot turn an orderly exit into SIGKILLs.
func grace(n int) time.Duration {
	if n >= 10000 {
		return 10 * time.Second
	}
	return time.Second
}

func newCell(sc string, n, reps, polledReps, sfdReps int, probe bool) cell {
	c := cell{Scenario: sc, N: n, Reps: reps, PolledReps: polledReps, SignalfdReps: sfdReps,
		Grace: grace(n), KillTimeout: 2 * time.Second, Probe: probe}
	if sc == "pagecache" {
		c.PagecacheMiB = 64
	}
	return c
}

// matrices builds the named matrix; reps > 0 overrides the repetitions.
func matrices(name string, reps int) (matrix, error) {
	var cells []cell
	switch name {
	case "quick":
		// What the targets need in under 3 minutes on 2 cores: 30
		// interleaved runs of vminit and the floor at N ≤ 1000 of "exit"
		// and "random" (and of polled where its ratio is judged, N ≤ 10,
		// and where it is bimodal, N = 100); N = 10000 once more than
		// once; a few runs of the rest. Peak RSS probes at the smallest
		// and largest N.
		for _, sc := range []string{"exit", "random"} {
			for _, n := range []int{1, 10, 100, 1000} {
				polled := 30
				if sc == "random" || n >= 1000 {
					polled = 15
				}
				cells = append(cells, newCell(sc, n, 30, polled, 3, sc == "exit" && n == 1))
			}
		}
		cells = append(cells,
			newCell("exit", 10000, 2, 2, 0, true),
			newCell("ignore", 10, 2, 2, 1, false),
			newCell("stopped", 10, 2, 2, 1, false),
			newCell("daemon", 100, 5, 5, 2, false),
			newCell("pagecache", 100, 5, 5, 2, false),
		)
	case "full":
		for _, s := range scenarios {
			for _, n := range []int{1, 10, 100, 1000, 10000} {
				if n < s.minN {
					continue
				}
				r, sr := 30, 10
				if n >= 10000 {
					r, sr = 10, 3
				}
				cells = append(cells, newCell(s.name, n, r, r, sr, true))
			}
		}
	case "smoke":
		// Every scenario and strategy once, small and short: make test.
		for _, s := range scenarios {
			c := newCell(s.name, 3, 1, 1, 1, s.name == "exit")
			c.Grace, c.KillTimeout = 150*time.Millisecond, 150*time.Millisecond
			if c.PagecacheMiB > 0 {
				c.PagecacheMiB = 4
			}
			cells = append(cells, c)
		}
	default:
		return matrix{}, fmt.Errorf("unknown matrix %q (want quick, full or smoke)", name)
	}
	if reps > 0 {
		for i := range cells {
			cells[i].Reps = reps
			cells[i].PolledReps = min(cells[i].PolledReps, reps)
			cells[i].SignalfdReps = min(cells[i].SignalfdReps, reps)
		}
	}
	return matrix{Name: name, Cells: cells}, nil
}

// only keeps the cells named in a comma-separated list of SCENARIO or
// SCENARIO:N.
func (m matrix) only(list string) (matrix, error) {
	var cells []cell
	for _, c := range m.Cells {
		for _, w := range strings.Split(list, ",") {
			sc, n, hasN := strings.Cut(strings.TrimSpace(w), ":")
			if sc == c.Scenario && (!hasN || n == strconv.Itoa(c.N)) {
				cells = append(cells, c)
				break
			}
		}
	}
	if len(cells) == 0 {
		return m, fmt.Errorf("no cell of matrix %s matches %q", m.Name, list)
	}
	m.Cells = cells
	return m, nil
}
