package main

import (
	"math"
	"slices"
	"time"
)

// Result is one invocation of the benchmark, as written to
// results/MATRIX-STAMP.json.
type Result struct {
	Matrix   matrix    `json:"matrix"`
	Command  string    `json:"command"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Machine  Machine   `json:"machine"`
	// SandboxStart is the launcher's own share of start → exec: the
	// sandbox's start → a static C program's main as PID 1 (median of a
	// few runs before the matrix).
	SandboxStart int64    `json:"sandbox_start_ns"`
	Binaries     Binaries `json:"binaries"`
	Samples      []Sample `json:"samples"`
}

// Machine describes where the benchmark ran.
type Machine struct {
	Kernel     string     `json:"kernel"`
	CPU        string     `json:"cpu"`
	CPUs       int        `json:"cpus"`
	MemoryMiB  int64      `json:"memory_mib"`
	Go         string     `json:"go"`
	Processes  int        `json:"host_processes"` // kill(-1) walks every process of the host
	LoadBefore [3]float64 `json:"load_before"`
	LoadAfter  [3]float64 `json:"load_after"`
	DataFS     string     `json:"data_fs"`    // filesystem of the page cache scenario's file
	CPUSource  string     `json:"cpu_source"` // where PID 1's CPU time is read
	Note       string     `json:"note,omitempty"`
}

// Binaries are the sizes of what ran, in bytes.
type Binaries struct {
	Commit       string `json:"commit,omitempty"` // of the repository the programs were built from
	Vminit       int64  `json:"vminit"`           // static, stripped, as make build makes it
	VminitStatic bool   `json:"vminit_static"`
	Strategy     int64  `json:"strategy"`
	Worker       int64  `json:"worker"`
	WorkerStatic bool   `json:"worker_static"`
}

// Sample is one run: one strategy as PID 1 shutting one scenario down. Times
// are nanoseconds; "trigger" is the moment the harness sent SIGTERM to PID 1.
type Sample struct {
	Seq      int    `json:"seq"` // order within the invocation
	Scenario string `json:"scenario"`
	N        int    `json:"n"`
	Strategy string `json:"strategy"`
	Rep      int    `json:"rep"`
	OK       bool   `json:"ok"`
	Err      string `json:"error,omitempty"`

	// Latency is trigger → PID 1 seen by the harness as ended by reboot(2)
	// (wait status SIGINT).
	Latency int64 `json:"latency_ns"`
	// TermSent is trigger → PID 1 had sent SIGTERM to all (its own clock).
	TermSent int64 `json:"term_sent_ns"`
	// LastExit is trigger → the last SIGTERM handler finished.
	LastExit int64 `json:"last_exit_ns"`
	// StartToExec is the sandbox's start → the workload's main.
	StartToExec int64 `json:"start_to_exec_ns"`

	// Setup is the sandbox's start → the harness saw the workload ready
	// (the N processes made), Wall the whole run as the harness spent it.
	Setup int64 `json:"setup_ns"`
	Wall  int64 `json:"wall_ns"`

	Processes    int `json:"processes"` // made by the worker, itself included
	Reaped       int `json:"reaped"`    // by PID 1 after the trigger
	Graceful     int `json:"graceful"`  // SIGTERM handlers that finished
	GracefulWant int `json:"graceful_want"`
	Lost         int `json:"lost"`             // exits that no wake-up reported
	Unseen       int `json:"unseen,omitempty"` // signalfd: exits no siginfo named
	Sleeps       int `json:"sleeps,omitempty"` // polled: 100 ms sleeps

	// WaitDone is trigger → PID 1 found no process left (or gave up), and
	// Sync how long its sync(2) took: with other work on the machine, sync
	// writes back whatever anyone left dirty, and is the noisiest step.
	WaitDone int64 `json:"wait_done_ns"`
	Sync     int64 `json:"sync_ns"`
	// Rebooting is trigger → PID 1 about to call reboot(2): vminit's
	// reboot event (after its read-only remounts, before its log flush),
	// the strategies' report line. The rest of Latency is reboot(2) itself,
	// the kernel tearing the namespace down and the harness waking up.
	Rebooting int64 `json:"rebooting_ns"`
	// Ready and WorkloadStart are, for vminit, the sandbox's start → its
	// ready and workload_start events: where start → exec goes.
	Ready         int64 `json:"ready_ns,omitempty"`
	WorkloadStart int64 `json:"workload_start_ns,omitempty"`

	// KillLate is SIGKILL − the grace deadline, when SIGKILL was sent.
	KillLate *int64 `json:"kill_after_deadline_ns,omitempty"`
	// CPU is PID 1's own CPU time from trigger to its end, -1 if unknown.
	CPU int64 `json:"pid1_cpu_ns"`
	// HWM is PID 1's VmHWM (peak RSS) just before the trigger. A probe run
	// (not counted in the latencies: the harness polls meanwhile) also
	// reads it every millisecond until PID 1 ends: PeakRSS is the last
	// value. MaxRSS is ru_maxrss of PID 1's wait4, which is useless here:
	// execve(2) folds the peak of the exec'ing process's old memory (the
	// harness's, shared by vfork) into it.
	HWM        int64  `json:"pid1_vmhwm_kb"`
	Probe      bool   `json:"probe,omitempty"`
	PeakRSS    int64  `json:"pid1_peak_rss_kb,omitempty"`
	MaxRSS     int64  `json:"pid1_maxrss_kb"`
	WaitStatus string `json:"wait_status"`
}

// dist summarises a sample of values.
type dist struct {
	N                           int
	Min, Median, P95, Max, Mean float64
}

// distOf returns the distribution of xs; percentiles are nearest-rank.
func distOf(xs []float64) dist {
	if len(xs) == 0 {
		nan := math.NaN()
		return dist{Min: nan, Median: nan, P95: nan, Max: nan, Mean: nan}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	return dist{N: len(s), Min: s[0], Median: median(s), P95: rank(s, 0.95), Max: s[len(s)-1], Mean: sum / float64(len(s))}
}

// median of sorted s: the mean of the middle two for an even count.
func median(s []float64) float64 {
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// rank returns the nearest-rank percentile p of sorted s.
func rank(s []float64, p float64) float64 {
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// row sums up one strategy in one cell.
type row struct {
	Scenario, Strategy string
	N                  int
	Runs, Failed       int
	Latency            dist // ms
	CPUPerReaped       dist // µs
	StartToExec        dist // ms
	GracefulMin        int
	GracefulWant       int
	Lost, Unseen       int
	PeakRSS            int64 // KiB: the largest VmHWM seen
	KillLateMax        float64
	Slept              []float64 // polled: latencies (ms) of runs that slept
	NoSleep            []float64 // polled: latencies (ms) of runs that did not
	samples            []Sample
}

// rows groups the samples by scenario, N and strategy, in matrix order.
func rows(samples []Sample) []*row {
	var out []*row
	index := map[[3]any]*row{}
	cellOrder := map[[2]any]int{}
	for _, s := range samples {
		if _, ok := cellOrder[[2]any{s.Scenario, s.N}]; !ok {
			cellOrder[[2]any{s.Scenario, s.N}] = len(cellOrder)
		}
		k := [3]any{s.Scenario, s.N, s.Strategy}
		r := index[k]
		if r == nil {
			r = &row{Scenario: s.Scenario, N: s.N, Strategy: s.Strategy, GracefulMin: math.MaxInt, KillLateMax: math.NaN()}
			index[k] = r
			out = append(out, r)
		}
		r.samples = append(r.samples, s)
	}
	for _, r := range out {
		var lat, cpu, start []float64
		for _, s := range r.samples {
			r.PeakRSS = max(r.PeakRSS, s.HWM, s.PeakRSS)
			if s.Probe {
				continue
			}
			r.Runs++
			if !s.OK {
				r.Failed++
				continue
			}
			ms := float64(s.Latency) / 1e6
			lat = append(lat, ms)
			if s.CPU >= 0 && s.Reaped > 0 {
				cpu = append(cpu, float64(s.CPU)/1e3/float64(s.Reaped))
			}
			if s.StartToExec > 0 {
				start = append(start, float64(s.StartToExec)/1e6)
			}
			r.GracefulMin = min(r.GracefulMin, s.Graceful)
			r.GracefulWant = s.GracefulWant
			r.Lost += s.Lost
			r.Unseen += s.Unseen
			if s.KillLate != nil {
				late := float64(*s.KillLate) / 1e6
				if math.IsNaN(r.KillLateMax) || late > r.KillLateMax {
					r.KillLateMax = late
				}
			}
			if s.Strategy == "polled" {
				if s.Sleeps > 0 {
					r.Slept = append(r.Slept, ms)
				} else {
					r.NoSleep = append(r.NoSleep, ms)
				}
			}
		}
		if r.GracefulMin == math.MaxInt {
			r.GracefulMin = 0
		}
		r.Latency, r.CPUPerReaped, r.StartToExec = distOf(lat), distOf(cpu), distOf(start)
	}
	slices.SortStableFunc(out, func(a, b *row) int {
		ca, cb := cellOrder[[2]any{a.Scenario, a.N}], cellOrder[[2]any{b.Scenario, b.N}]
		if ca != cb {
			return ca - cb
		}
		return slices.Index(strategyNames, a.Strategy) - slices.Index(strategyNames, b.Strategy)
	})
	return out
}

// find returns the row of a strategy in a cell, or nil.
func find(rs []*row, scenario string, n int, strategy string) *row {
	for _, r := range rs {
		if r.Scenario == scenario && r.N == n && r.Strategy == strategy {
			return r
		}
	}
	return nil
}

// ratio returns a/b, NaN when either is unknown.
func ratio(a, b float64) float64 {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return a / b
}
