package shutdown

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/multierr"
	"golang.org/x/sys/unix"

	"github.com/vminit/vminit/internal/event"
	"github.com/vminit/vminit/internal/guard"
	"github.com/vminit/vminit/internal/rawfile"
	"github.com/vminit/vminit/loop"
)

// rebootAttempts is how many times reboot(2) is tried before freezing, one
// second apart.
const rebootAttempts = 3

// Sequence is the shutdown state machine. It is advanced only by loop events:
// Start (a trigger), the reaper's drains, its deadline timer and the results
// of its workers, so its methods run on the loop goroutine.
type Sequence struct {
	cfg    Config
	loop   *loop.Loop
	reaper *Reaper
	emit   func(event.Event)

	phase     Phase
	final     Final       // the command in force
	timer     *loop.Timer // the current phase's deadline
	graceEnd  int64       // CLOCK_MONOTONIC deadline of the grace
	work      int         // generation of the current worker: late results are dropped
	errs      error       // failed steps, collected
	finishers []func(done func())
	pending   int // finishers not done yet
	attempts  int
	plan      []Mount // remounts not yet reported
}

// New returns a Sequence in the Running phase. It takes over r.OnDrained.
// It refuses unless the process may act as init (guard.Check): a Sequence
// sends signals to every process it can reach.
func New(l *loop.Loop, r *Reaper, emit func(event.Event), cfg Config) (*Sequence, error) {
	if _, err := guard.Check(); err != nil {
		return nil, fmt.Errorf("shutdown: %w", err)
	}
	s := &Sequence{cfg: cfg, loop: l, reaper: r, emit: emit, final: cfg.Final}
	if s.cfg.Reboot == nil {
		s.cfg.Reboot = unix.Reboot
	}
	if s.cfg.Sync == nil {
		s.cfg.Sync = unix.Sync
	}
	if s.cfg.Expected == nil {
		s.cfg.Expected = func(error) string { return "" }
	}
	t, err := l.NewTimer(s.expired)
	if err != nil {
		return nil, err
	}
	s.timer = t
	r.OnDrained = s.drained
	return s, nil
}

// Phase returns the current phase.
func (s *Sequence) Phase() Phase { return s.phase }

// Err returns the steps that failed so far, combined with multierr.
func (s *Sequence) Err() error { return s.errs }

// OnFinish registers f to run after the reboot event is emitted; reboot(2)
// waits until every f has called done (from any goroutine), or until
// FinishTimeout. Loggers flush here; control connections wait for their
// host to read the last event.
func (s *Sequence) OnFinish(f func(done func())) { s.finishers = append(s.finishers, f) }

// Start begins the shutdown with the configured grace and final command, on
// behalf of source (a signal name, "workload_exit", ...). It reports false,
// and does nothing, if a shutdown is already under way.
func (s *Sequence) Start(source string) bool {
	return s.StartWith(source, s.cfg.Grace, s.cfg.Final)
}

// StartWith is Start with a grace and final command of the request's own.
func (s *Sequence) StartWith(source string, grace time.Duration, final Final) bool {
	if s.phase != Running {
		return false
	}
	s.emit(event.Event{Kind: event.Trigger, Source: source})
	s.phase = Terminating
	s.final = final
	s.kill(unix.SIGTERM)
	s.kill(unix.SIGCONT) // a stopped process runs its SIGTERM handler only once continued
	// One reading for the event and the deadline: grace_expired comes
	// exactly the grace after sigterm.
	sent := event.Now()
	s.graceEnd = deadlineFrom(sent, grace)
	s.emit(event.Event{Kind: event.SigTerm, Mono: sent, Grace: grace})
	s.arm(s.timer.ResetAt(s.graceEnd))
	s.reaper.Reap() // nobody left at all: ECHILD ends the wait at once
	return true
}

// Final returns the reboot(2) command in force.
func (s *Sequence) Final() Final { return s.final }

// GraceLeft returns the time left until the grace expires, while
// terminating.
func (s *Sequence) GraceLeft() time.Duration {
	if s.phase != Terminating {
		return 0
	}
	return max(0, time.Duration(s.graceEnd-event.Now()))
}

// Shorten moves the grace deadline to d from now if that is earlier; it
// never extends it. It does nothing outside the Terminating phase.
func (s *Sequence) Shorten(d time.Duration) {
	if s.phase != Terminating {
		return
	}
	if end := deadline(d); end < s.graceEnd {
		s.graceEnd = end
		s.arm(s.timer.ResetAt(end))
	}
}

// deadline returns CLOCK_MONOTONIC d from now, saturating instead of
// wrapping for a d near the largest duration.
func deadline(d time.Duration) int64 { return deadlineFrom(event.Now(), d) }

func deadlineFrom(now int64, d time.Duration) int64 {
	if int64(d) > math.MaxInt64-now {
		return math.MaxInt64
	}
	return now + int64(d)
}

// kill sends sig to every process but PID 1. ESRCH means nobody is left.
func (s *Sequence) kill(sig unix.Signal) {
	if err := unix.Kill(-1, sig); err != nil && err != unix.ESRCH {
		s.fail("kill", fmt.Errorf("kill(-1, %s): %w", unix.SignalName(sig), err))
	}
}

// drained is the reaper's OnDrained.
func (s *Sequence) drained(gone bool) {
	switch s.phase {
	case Terminating, Killing:
		if gone {
			s.sync()
		} else if s.phase == Killing {
			// Processes forked while SIGKILL was on its way escape it:
			// repeat it while anything is left.
			s.kill(unix.SIGKILL)
		}
	}
}

// expired is the deadline timer's function.
func (s *Sequence) expired() {
	switch s.phase {
	case Terminating:
		s.graceExpired()
	case Killing:
		left, _ := Survivors()
		s.fail("kill", fmt.Errorf("%d processes survived SIGKILL for %v: %s", len(left), s.cfg.KillTimeout, procList(left)))
		s.sync()
	case Syncing:
		s.emit(event.Event{Kind: event.Sync, Step: "timeout", Err: fmt.Sprintf("sync still running after %v", s.cfg.SyncTimeout)})
		s.errs = multierr.Append(s.errs, fmt.Errorf("sync: timed out after %v", s.cfg.SyncTimeout))
		s.remount()
	case Remounting:
		var left []string
		for _, m := range s.plan {
			left = append(left, m.Target)
		}
		s.fail("remount", fmt.Errorf("timed out after %v; not done: %s", s.cfg.SyncTimeout, strings.Join(left, " ")))
		s.finish()
	case Finishing:
		s.reboot()
	case Rebooting:
		s.reboot()
	}
}

// graceExpired collects what already exited, then SIGKILLs the rest at once
// and names them: zombies keep their names in /proc until reaped, so the
// listing can follow the kill instead of delaying it.
func (s *Sequence) graceExpired() {
	s.reaper.Reap()
	if s.phase != Terminating {
		return // the drain found nobody left
	}
	expiredAt := event.Now() // after the drain's reaped events: times never go back
	s.phase = Killing
	s.kill(unix.SIGKILL)
	killedAt := event.Now()
	survivors, err := Survivors()
	if err != nil {
		s.fail("grace", fmt.Errorf("list processes: %w", err))
	}
	if survivors == nil {
		survivors = []event.Proc{}
	}
	s.emit(event.Event{Kind: event.GraceExpired, Mono: expiredAt, Survivors: survivors})
	s.emit(event.Event{Kind: event.SigKill, Mono: killedAt})
	s.arm(s.timer.Reset(s.cfg.KillTimeout))
	s.reaper.Reap()
}

// sync runs sync(2) on a worker goroutine under SyncTimeout: a hung disk must
// not hang power-off.
func (s *Sequence) sync() {
	s.phase = Syncing
	s.emit(event.Event{Kind: event.Sync, Step: "start"})
	s.arm(s.timer.Reset(s.cfg.SyncTimeout))
	s.work++
	gen := s.work
	sync := s.cfg.Sync
	go func() {
		sync()
		_ = s.loop.Post(func() {
			if s.work == gen && s.phase == Syncing {
				s.emit(event.Event{Kind: event.Sync, Step: "end"})
				s.remount()
			}
		})
	}()
}

// remount remounts every writable filesystem read-only at the superblock
// level, innermost first, on a worker goroutine under SyncTimeout: a
// read-only remount writes back and may hang like sync.
func (s *Sequence) remount() {
	s.phase = Remounting
	if !s.cfg.Remount {
		s.finish()
		return
	}
	// Asked again here, so that no bug elsewhere can remount a host's
	// filesystems: only in a VM, or under a user namespace of our own.
	if _, err := guard.Check(); err != nil {
		s.fail("remount", err)
		s.finish()
		return
	}
	ms, err := readMountinfo()
	if err != nil {
		s.fail("remount", err) // and remount what could be read
	}
	s.plan = RemountPlan(ms)
	if s.cfg.Leave != nil {
		left := 0
		s.plan = slices.DeleteFunc(s.plan, func(m Mount) bool {
			if s.cfg.Leave(m) {
				left++
				return true
			}
			return false
		})
		if left > 0 {
			s.emit(event.Event{Kind: event.Log, Level: "INFO", Msg: fmt.Sprintf("remount: %d filesystems left alone (%s)", left, s.cfg.LeaveWhy)})
		}
	}
	if len(s.plan) == 0 {
		s.finish()
		return
	}
	s.arm(s.timer.Reset(s.cfg.SyncTimeout))
	s.work++
	gen := s.work
	plan := slices.Clone(s.plan)
	// Results are posted as they come, but a post that is still pending
	// carries the ones that follow it: one hand-off for many remounts,
	// and still every remount done when another one hangs.
	var mu sync.Mutex
	var done []remountResult
	go func() {
		for _, m := range plan {
			err := remountReadOnly(m)
			ro := err == nil && isReadOnly(m.Target)
			if err == nil && !ro {
				err = errors.New("remount succeeded but the filesystem is still writable")
			}
			mu.Lock()
			done = append(done, remountResult{m, ro, err, event.Now()})
			first := len(done) == 1
			mu.Unlock()
			if first {
				_ = s.loop.Post(func() {
					mu.Lock()
					rs := done
					done = nil
					mu.Unlock()
					for _, r := range rs {
						if s.work == gen && s.phase == Remounting {
							s.remounted(r)
						}
					}
				})
			}
		}
	}()
}

// remountResult is one remount's outcome, as the worker saw it.
type remountResult struct {
	m   Mount
	ro  bool
	err error
	at  int64 // CLOCK_MONOTONIC when it was done
}

func (s *Sequence) remounted(r remountResult) {
	m, ro, err := r.m, r.ro, r.err
	s.plan = s.plan[1:]
	ev := event.Event{Kind: event.Remount, Mono: r.at, Mount: m.Target, FSType: m.FSType, ReadOnly: ro}
	if err != nil {
		ev.Err = err.Error()
		if why := s.cfg.Expected(err); why != "" {
			ev.Level = "INFO"
			ev.Err += " (" + why + ")"
		} else {
			ev.Level = "ERROR"
			s.errs = multierr.Append(s.errs, fmt.Errorf("remount %s: %w", m.Target, err))
		}
	}
	s.emit(ev)
	if len(s.plan) == 0 {
		s.finish()
	}
}

// finish emits the reboot event, then waits for the finishers (bounded by
// FinishTimeout) before calling reboot(2).
func (s *Sequence) finish() {
	s.phase = Finishing
	ev := event.Event{Kind: event.Reboot, Command: s.final.String()}
	if s.errs != nil {
		ev.Err = s.errs.Error()
	}
	s.emit(ev)
	s.pending = len(s.finishers)
	if s.pending == 0 {
		s.reboot()
		return
	}
	s.arm(s.timer.Reset(s.cfg.FinishTimeout))
	s.work++
	gen := s.work
	for _, f := range s.finishers {
		f(func() {
			_ = s.loop.Post(func() {
				if s.work == gen && s.phase == Finishing {
					if s.pending--; s.pending == 0 {
						s.reboot()
					}
				}
			})
		})
	}
}

// reboot calls reboot(2). If it returns, it is retried a second later, then
// the sequence freezes: PID 1 must not exit, so it keeps reaping.
func (s *Sequence) reboot() {
	s.phase = Rebooting
	_ = s.timer.Stop()
	err := s.cfg.Reboot(s.final.Cmd())
	if err == nil {
		return // a test's Reboot
	}
	s.attempts++
	s.fail("reboot", fmt.Errorf("reboot(%s), attempt %d of %d: %w", s.final, s.attempts, rebootAttempts, err))
	if s.attempts < rebootAttempts {
		s.arm(s.timer.Reset(time.Second))
		return
	}
	s.phase = Frozen
	s.emit(event.Event{Kind: event.Error, Step: "reboot", Level: "ERROR",
		Err: "reboot(2) keeps failing: frozen; PID 1 keeps reaping and will not exit"})
}

// fail reports a failed step and collects it, unless it is expected here.
func (s *Sequence) fail(step string, err error) {
	ev := event.Event{Kind: event.Error, Step: step, Err: err.Error(), Level: "ERROR"}
	if why := s.cfg.Expected(err); why != "" {
		ev.Level = "INFO"
		ev.Err += " (" + why + ")"
	} else {
		s.errs = multierr.Append(s.errs, fmt.Errorf("%s: %w", step, err))
	}
	s.emit(ev)
}

// arm reports a timer that could not be armed. Without its deadline a phase
// could wait forever, so the phase's deadline work is done at once instead.
func (s *Sequence) arm(err error) {
	if err != nil {
		s.fail("timer", err)
		_ = s.loop.Post(s.expired)
	}
}

func procList(ps []event.Proc) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, " ")
}

func readMountinfo() ([]Mount, error) {
	b, err := rawfile.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return ParseMountinfo(bytes.NewReader(b))
}
