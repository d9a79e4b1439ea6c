package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"syscall"
	"time"

	"github.com/vminit/vminit/internal/event"
)

// records reads the worker's records: readiness, graceful exits, errors.
func (s *Sample) records(b []byte, started, trigger int64) (problems []string) {
	graceful := map[int32]bool{}
	for ; len(b) >= recordSize; b = b[recordSize:] {
		r := parseRecord(b)
		switch r.kind {
		case 'R':
			s.StartToExec = r.a - started
			s.Processes = int(r.b)
		case 'G':
			graceful[r.pid] = true
			s.LastExit = max(s.LastExit, r.a-trigger)
		case 'E':
			problems = append(problems, fmt.Sprintf("worker %d: %s failed: %v", r.pid, workerSteps[r.b], syscall.Errno(r.a)))
		}
	}
	if len(b) != 0 {
		problems = append(problems, fmt.Sprintf("worker: %d stray bytes", len(b)))
	}
	s.Graceful = len(graceful)
	return problems
}

// The worker's records (workload/worker.c).
const recordSize = 24

type record struct {
	kind uint32
	pid  int32
	a, b int64
}

var workerSteps = map[int64]string{1: "moving to its cgroup", 2: "fork", 3: "waiting for a process to stop", 4: "writing the page cache file", 5: "reading its arguments"}

func parseRecord(b []byte) record {
	le := binary.NativeEndian
	return record{kind: le.Uint32(b), pid: int32(le.Uint32(b[4:])), a: int64(le.Uint64(b[8:])), b: int64(le.Uint64(b[16:]))}
}

func hasRecord(b []byte, kind uint32) bool {
	for ; len(b) >= recordSize; b = b[recordSize:] {
		if parseRecord(b).kind == kind {
			return true
		}
	}
	return false
}

// vminitEvents reads vminit's JSON events.
func (s *Sample) vminitEvents(b []byte, started, trigger int64, grace time.Duration) (problems []string) {
	var tl event.Timeline
	var evs []event.Event
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var e event.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			problems = append(problems, fmt.Sprintf("vminit: bad event %q", sc.Text()))
			continue
		}
		evs = append(evs, e)
		tl.Add(e)
		switch e.Kind {
		case event.Ready:
			s.Ready = e.Mono - started
		case event.WorkloadStart:
			s.WorkloadStart = e.Mono - started
		}
	}
	if !tl.Done() {
		problems = append(problems, "vminit: no reboot event")
	}
	for _, e := range tl.Errors {
		problems = append(problems, "vminit: "+e)
	}
	s.Reaped = tl.Reaped
	if tl.SigTerm == 0 {
		return append(problems, "vminit: no sigterm event")
	}
	s.TermSent = tl.SigTerm - trigger
	if tl.Reboot != 0 {
		s.Rebooting = tl.Reboot - trigger
	}
	if tl.SyncStart != 0 {
		s.WaitDone = tl.SyncStart - trigger
		if tl.SyncEnd != 0 {
			s.Sync = tl.SyncEnd - tl.SyncStart
		}
	}
	deadline := tl.SigTerm + int64(grace)
	if tl.SigKill != 0 {
		late := tl.SigKill - deadline
		s.KillLate = &late
	}
	// An exit that no SIGCHLD wake-up reported is reaped only by the drain
	// the grace timer makes before SIGKILL; after SIGKILL, vminit gives up
	// on it at the kill timeout (an error event "survived SIGKILL").
	for _, e := range evs {
		switch {
		case e.Kind == event.Reaped && e.Mono >= deadline-int64(time.Millisecond) && (tl.SigKill == 0 || e.Mono <= tl.SigKill):
			s.Lost++
		case e.Kind == event.Error && e.Step == "kill":
			s.Lost++
		}
	}
	return problems
}

// strategyReport reads the strategy program's report line.
func (s *Sample) strategyReport(b []byte, trigger int64) (problems []string) {
	var r struct {
		Trigger int64 `json:"trigger_ns"`
		Term    int64 `json:"term_ns"`
		Grace   int64 `json:"grace_end_ns"`
		Kill    int64 `json:"kill_ns"`
		Done    int64 `json:"done_ns"`
		Synced  int64 `json:"sync_ns"`
		Reaped  int   `json:"reaped"`
		Lost    int   `json:"lost"`
		Unseen  int   `json:"unseen"`
		Sleeps  int   `json:"sleeps"`
		Left    int   `json:"left"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(b), &r); err != nil {
		return []string{fmt.Sprintf("strategy: no report (%v): %q", err, b)}
	}
	s.TermSent = r.Term - trigger
	s.WaitDone, s.Sync, s.Rebooting = r.Done-trigger, r.Synced-r.Done, r.Synced-trigger
	s.Reaped, s.Lost, s.Unseen, s.Sleeps = r.Reaped, r.Lost, r.Unseen, r.Sleeps
	if r.Kill != 0 {
		late := r.Kill - r.Grace
		s.KillLate = &late
	}
	if r.Left != 0 {
		problems = append(problems, "strategy: gave up on processes that did not exit")
	}
	return problems
}
