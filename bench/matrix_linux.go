package main

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/vminit/vminit/internal/sandbox"
)

// runMatrix builds the programs and runs every cell of m, the strategies
// interleaved run by run in a shuffled order, and returns the samples.
// The programs are built first, unless b holds them already.
func runMatrix(m matrix, seed uint64, b *bins, progress io.Writer) (res *Result, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("needs root: every strategy runs as PID 1 of new user and PID namespaces whose root maps to uid 65534, which only root may set up")
	}
	if b == nil {
		fmt.Fprintf(progress, "bench: building vminit, strategy and worker\n")
		if b, err = build(); err != nil {
			return nil, err
		}
		defer os.RemoveAll(b.dir)
	}
	h := &harness{bins: b}
	dir, fsName, err := dataDir()
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	defer os.RemoveAll(dir)
	h.dataDir = dir

	res = &Result{Matrix: m, Started: time.Now(), Machine: describeMachine(), Binaries: b.sizes}
	res.Machine.DataFS = fsName
	if h.cg, err = newCgroups(); err != nil {
		res.Machine.CPUSource = "none: " + err.Error()
		fmt.Fprintf(progress, "bench: PID 1's CPU time will not be measured: %v\n", err)
	} else {
		defer h.cg.remove()
		res.Machine.CPUSource = "cgroup v2 cpu.stat usage_usec of a cgroup holding PID 1 alone"
	}
	if fsName == "tmpfs" {
		res.Machine.Note = "The page cache scenario's file is on tmpfs: sync(2) has nothing to write back."
	}
	res.SandboxStart = h.sandboxStart(15)
	uid, _ := sandbox.HostIDs()
	fmt.Fprintf(progress, "bench: matrix %s, %d cells, seed %d; sandbox root is host uid %d; sandbox start → PID 1 main %.2f ms\n",
		m.Name, len(m.Cells), seed, uid, float64(res.SandboxStart)/1e6)

	rng := rand.New(rand.NewPCG(seed, 0x76d696e6974))
	for ci, c := range m.Cells {
		t0 := time.Now()
		for rep := 0; rep < c.Reps; rep++ {
			var order []string
			for _, st := range strategyNames {
				if rep < c.reps(st) {
					order = append(order, st)
				}
			}
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			runSeed := seed ^ uint64(ci)<<32 ^ uint64(rep)
			for _, st := range order {
				s := h.run(spec{cell: c, strategy: st, rep: rep, seed: runSeed})
				res.Samples = append(res.Samples, s)
				if !s.OK {
					fmt.Fprintf(progress, "bench: %s %s run %d failed: %s\n", c, st, rep, s.Err)
				}
			}
		}
		// One probe run per strategy for the peak RSS: the harness polls
		// PID 1 meanwhile, so these are left out of the latencies.
		for _, st := range strategyNames {
			if !c.Probe {
				break
			}
			if c.reps(st) == 0 {
				continue
			}
			s := h.run(spec{cell: c, strategy: st, rep: -1, seed: seed ^ uint64(ci)<<32, probe: true})
			res.Samples = append(res.Samples, s)
			if !s.OK {
				fmt.Fprintf(progress, "bench: %s %s probe run failed: %s\n", c, st, s.Err)
			}
		}
		fmt.Fprintf(progress, "bench: %-16s %s (%v)\n", c, cellLine(res.Samples, c), time.Since(t0).Round(100*time.Millisecond))
	}
	res.Finished = time.Now()
	res.Machine.LoadAfter = loadavg()
	return res, nil
}

// cellLine sums a cell up for the progress log: median latency per strategy.
func cellLine(samples []Sample, c cell) string {
	var parts []string
	for _, r := range rows(samples) {
		if r.Scenario == c.Scenario && r.N == c.N {
			parts = append(parts, fmt.Sprintf("%s %s ms", r.Strategy, ms(r.Latency.Median)))
		}
	}
	return strings.Join(parts, ", ")
}
