package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vminit/vminit/internal/event"
	"github.com/vminit/vminit/internal/sandbox"
)

// harness runs samples. It is not safe for concurrent use: runs never
// overlap, so that each has the machine to itself (as far as the harness can
// arrange on a shared machine).
type harness struct {
	bins    *bins
	cg      *cgroups // nil: PID 1's CPU time is not measured
	dataDir string   // mode 1777, on a disk filesystem if the machine has one
	seq     int
}

// spec is one run to make.
type spec struct {
	cell     cell
	strategy string
	rep      int
	seed     uint64 // the same for every strategy in a repetition
	probe    bool   // poll PID 1's peak RSS until it ends
}

// Timeouts of a run, beyond its grace and kill timeout: the hang guards.
const (
	setupTimeout = 120 * time.Second
	endSlack     = 30 * time.Second
	drainTimeout = 10 * time.Second
)

// run makes one run and returns its sample; a failed run is a sample with
// OK false and the reason.
func (h *harness) run(sp spec) (s Sample) {
	h.seq++
	c := sp.cell
	t0 := time.Now()
	defer func() { s.Wall = int64(time.Since(t0)) }()
	s = Sample{Seq: h.seq, Scenario: c.Scenario, N: c.N, Strategy: sp.strategy, Rep: sp.rep, CPU: -1,
		GracefulWant: c.N - ignoredCount(c.Scenario, c.N), Probe: sp.probe}
	fail := func(format string, args ...any) Sample {
		s.OK = false
		if s.Err != "" {
			s.Err += "; "
		}
		s.Err += fmt.Sprintf(format, args...)
		return s
	}

	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	// The records and the report go to in-memory files, which PID 1's side
	// writes and the harness reads only before the trigger and after the
	// end: a pipe would wake a reader at every write (or fill up), so that
	// the harness would compete with PID 1 for the CPUs.
	rec, err := newMemfile("vminit-bench-records")
	if err != nil {
		return fail("%v", err)
	}
	closers = append(closers, rec)
	rep, err := newMemfile("vminit-bench-report")
	if err != nil {
		return fail("%v", err)
	}
	closers = append(closers, rep)
	errR, errW, err := os.Pipe()
	if err != nil {
		return fail("%v", err)
	}
	closers = append(closers, errR, errW)
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return fail("%v", err)
	}
	closers = append(closers, devnull)

	uid, gid := sandbox.HostIDs()
	var cg *runCgroup
	procs := "-"
	if h.cg != nil {
		if cg, err = h.cg.run(h.seq, uid, gid); err != nil {
			return fail("cgroup: %v", err)
		}
		defer cg.remove()
		procs = cg.workProcs()
	}
	data := "-"
	if c.PagecacheMiB > 0 {
		data = filepath.Join(h.dataDir, fmt.Sprintf("pagecache-%d", h.seq))
		defer os.Remove(data)
	}
	workload := []string{h.bins.worker, c.Scenario, strconv.Itoa(c.N), strconv.FormatUint(sp.seed, 10), procs, data, strconv.Itoa(c.PagecacheMiB)}
	var path string
	var args []string
	isVminit := sp.strategy == "vminit" || sp.strategy == "vminit-b"
	switch sp.strategy {
	case "vminit", "vminit-b":
		path = h.bins.vminit
		if sp.strategy == "vminit-b" {
			path = h.bins.vminitB
		}
		args = []string{"vminit", "--report-fd=3", "--cmdline=",
			"--grace=" + c.Grace.String(), "--kill-timeout=" + c.KillTimeout.String()}
		if sp.strategy == "vminit-b" {
			args = append(args, vminitBFlags...)
		}
		args = append(append(args, "--"), workload...)
	default:
		path = h.bins.strategy
		args = append([]string{"strategy", "-s", sp.strategy, "-grace", c.Grace.String(),
			"-kill-timeout", c.KillTimeout.String(), "-report-fd", "3", "--"}, workload...)
	}
	exe, err := os.Open(path)
	if err != nil {
		return fail("%v", err)
	}
	closers = append(closers, exe)

	opts := sandbox.Options{Exe: exe, Args: args, Env: []string{"PATH=/usr/bin:/bin"},
		Files: []*os.File{devnull, rec.w, errW, rep.w}}
	if cg != nil {
		opts.Cgroup = cg.init
	}
	started := event.Now()
	p, err := sandbox.Start(opts)
	if err != nil && cg != nil {
		// clone3 with CLONE_INTO_CGROUP is Linux 5.7; without it, PID 1's
		// CPU time goes unmeasured from here on.
		h.cg, cg, opts.Cgroup = nil, nil, nil
		workload[4] = "-"
		started = event.Now()
		p, err = sandbox.Start(opts)
	}
	if err != nil {
		return fail("%v", err)
	}
	rec.w.Close()
	rep.w.Close()
	errW.Close()

	// The waiter sees PID 1 end (waitid with WNOWAIT), takes the time and
	// PID 1's CPU time, then reaps it.
	type ending struct {
		at  int64
		cpu int64
		ws  unix.WaitStatus
		ru  *unix.Rusage
		err error
	}
	ended := make(chan ending, 1)
	go func() {
		var info unix.Siginfo
		for unix.Waitid(unix.P_PID, p.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil) == unix.EINTR {
		}
		e := ending{at: event.Now(), cpu: -1}
		if cg != nil {
			e.cpu = cg.usage()
		}
		e.ws, e.ru, e.err = p.Wait()
		ended <- e
	}()

	stderr := newReader(errR)
	var end ending
	poll := time.NewTicker(500 * time.Microsecond)
	setupEnd := time.Now().Add(setupTimeout)
	for !hasRecord(rec.bytes(), 'R') {
		select {
		case end = <-ended:
			poll.Stop()
			return fail("PID 1 ended before the workload was ready (%s)%s", sandbox.Describe(end.ws), tail(stderr.wait(drainTimeout)))
		case now := <-poll.C:
			if now.After(setupEnd) {
				poll.Stop()
				_ = p.Signal(unix.SIGKILL)
				<-ended
				return fail("the workload was not ready after %v%s", setupTimeout, tail(stderr.wait(drainTimeout)))
			}
		}
	}
	poll.Stop()
	s.Setup = event.Now() - started
	s.HWM = vmHWM(p.Pid)
	cpu0 := int64(-1)
	if cg != nil {
		cpu0 = cg.usage()
	}

	var peak atomic.Int64
	stopProbe := make(chan struct{})
	probed := make(chan struct{})
	if sp.probe {
		go func() {
			defer close(probed)
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for {
				if kb := vmHWM(p.Pid); kb > peak.Load() {
					peak.Store(kb)
				}
				select {
				case <-stopProbe:
					return
				case <-tick.C:
				}
			}
		}()
	} else {
		close(probed)
	}

	trigger := event.Now()
	if err := p.Signal(unix.SIGTERM); err != nil {
		_ = p.Signal(unix.SIGKILL)
		<-ended
		return fail("trigger: %v", err)
	}
	select {
	case end = <-ended:
	case <-time.After(c.Grace + c.KillTimeout + endSlack):
		_ = p.Signal(unix.SIGKILL)
		end = <-ended
		s.Err = fmt.Sprintf("PID 1 still running %v after the trigger: killed", c.Grace+c.KillTimeout+endSlack)
	}
	close(stopProbe)
	<-probed
	s.PeakRSS = max(peak.Load(), s.HWM)
	s.Latency = end.at - trigger
	if end.cpu >= 0 && cpu0 >= 0 {
		s.CPU = end.cpu - cpu0
	}
	if end.ru != nil {
		s.MaxRSS = end.ru.Maxrss
	}
	s.WaitStatus = sandbox.Describe(end.ws)

	recBytes, repBytes, errBytes := rec.bytes(), rep.bytes(), stderr.wait(drainTimeout)
	var problems []string
	if s.Err != "" {
		problems = append(problems, s.Err)
	}
	if end.err != nil {
		problems = append(problems, end.err.Error())
	}
	if !end.ws.Signaled() || end.ws.Signal() != unix.SIGINT {
		problems = append(problems, "PID 1 did not end by reboot(POWER_OFF): "+s.WaitStatus)
	}
	problems = append(problems, s.records(recBytes, started, trigger)...)
	if isVminit {
		problems = append(problems, s.vminitEvents(repBytes, started, trigger, c.Grace)...)
	} else {
		problems = append(problems, s.strategyReport(repBytes, trigger)...)
	}
	if s.Processes != c.N {
		problems = append(problems, fmt.Sprintf("the worker made %d processes, not %d", s.Processes, c.N))
	}
	if s.Reaped != c.N {
		problems = append(problems, fmt.Sprintf("PID 1 reaped %d processes after the trigger, not %d", s.Reaped, c.N))
	}
	s.OK = len(problems) == 0
	s.Err = strings.Join(problems, "; ")
	if !s.OK {
		s.Err += tail(errBytes)
	}
	return s
}

// memfile is an in-memory file (memfd_create(2)): PID 1's side appends to
// it through w (O_APPEND, so that the records of many processes land whole,
// one after the other), the harness reads it whenever it likes. A write to
// it wakes nobody, it never fills up, and sync(2) has nothing to write back.
type memfile struct {
	r, w *os.File
}

func newMemfile(name string) (*memfile, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("memfd_create", err)
	}
	m := &memfile{r: os.NewFile(uintptr(fd), name)}
	if m.w, err = os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", fd), os.O_WRONLY|os.O_APPEND, 0); err != nil {
		m.r.Close()
		return nil, err
	}
	return m, nil
}

// bytes returns everything written so far.
func (m *memfile) bytes() []byte {
	st, err := m.r.Stat()
	if err != nil {
		return nil
	}
	b := make([]byte, st.Size())
	n, _ := m.r.ReadAt(b, 0)
	return b[:n]
}

func (m *memfile) Close() error {
	m.w.Close()
	return m.r.Close()
}

// reader collects what a pipe delivers, until EOF.
type reader struct {
	buf  bytes.Buffer
	done chan struct{}
}

func newReader(f *os.File) *reader {
	r := &reader{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		_, _ = r.buf.ReadFrom(f)
	}()
	return r
}

// wait returns everything read up to EOF, or nothing after the timeout.
func (r *reader) wait(timeout time.Duration) []byte {
	select {
	case <-r.done:
		return r.buf.Bytes()
	case <-time.After(timeout):
		return nil
	}
}

// vmHWM returns VmHWM of a process in KiB, 0 if unknown.
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}

// tail formats the end of PID 1's stderr for an error message.
func tail(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return ""
	}
	if len(b) > 600 {
		b = b[len(b)-600:]
	}
	return "; stderr: " + string(b)
}

// sandboxStart measures the launcher's own share of start → exec: the
// sandbox's start (with the same options as the runs) → the main of a
// static C program as PID 1, the worker itself making no process. It
// returns the median of k runs, 0 if none succeeded.
func (h *harness) sandboxStart(k int) int64 {
	var xs []float64
	for i := 0; i < k; i++ {
		if d, err := h.sandboxStartOnce(); err == nil {
			xs = append(xs, float64(d))
		}
	}
	if len(xs) == 0 {
		return 0
	}
	return int64(distOf(xs).Median)
}

func (h *harness) sandboxStartOnce() (int64, error) {
	h.seq++
	uid, gid := sandbox.HostIDs()
	exe, err := os.Open(h.bins.worker)
	if err != nil {
		return 0, err
	}
	defer exe.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	defer w.Close()
	opts := sandbox.Options{Exe: exe, Args: []string{"worker", "exit", "1", "0", "-", "-", "0"},
		Env: []string{"PATH=/usr/bin:/bin"}, Files: []*os.File{w, w, w}}
	if h.cg != nil {
		cg, err := h.cg.run(h.seq, uid, gid)
		if err != nil {
			return 0, err
		}
		defer cg.remove()
		opts.Cgroup = cg.init
	}
	started := event.Now()
	p, err := sandbox.Start(opts)
	if err != nil {
		return 0, err
	}
	w.Close()
	buf := make([]byte, recordSize)
	_, err = io.ReadFull(r, buf)
	_ = p.Signal(unix.SIGTERM) // its handler ends it, and the namespace
	if _, _, werr := p.Wait(); err == nil {
		err = werr
	}
	if err != nil {
		return 0, err
	}
	rec := parseRecord(buf)
	if rec.kind != 'R' {
		return 0, fmt.Errorf("worker as PID 1: record %q", rune(rec.kind))
	}
	return rec.a - started, nil
}
