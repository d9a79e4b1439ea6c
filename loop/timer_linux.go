package loop

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Timer is a one-shot timer on a timerfd (CLOCK_MONOTONIC) in the loop. It
// can be re-armed with Reset or ResetAt and disarmed with Stop any number of
// times; its function runs on the loop goroutine once per arming, never
// before the deadline. A timer re-armed or stopped after it expired but
// before its function ran does not run for the old deadline.
//
// Timer methods must be called on the loop goroutine.
type Timer struct {
	l  *Loop
	fd int
	f  func()
}

// NewTimer returns a disarmed timer that calls f when it expires.
func (l *Loop) NewTimer(f func()) (t *Timer, err error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_CLOEXEC|unix.TFD_NONBLOCK)
	if err != nil {
		return nil, os.NewSyscallError("timerfd_create", err)
	}
	t = &Timer{l: l, fd: fd, f: f}
	if err := l.Add(fd, unix.EPOLLIN, t.expired); err != nil {
		unix.Close(fd)
		return nil, err
	}
	l.timers[t] = struct{}{}
	return t, nil
}

// Reset arms the timer to expire after d. A d of zero or less makes it expire
// at the loop's next turn.
func (t *Timer) Reset(d time.Duration) error {
	if d <= 0 {
		d = 1 // a zero it_value would disarm the timer
	}
	return t.set(0, unix.NsecToTimespec(int64(d)))
}

// ResetAt arms the timer to expire when CLOCK_MONOTONIC reaches deadline
// (nanoseconds). A deadline in the past expires at the loop's next turn.
func (t *Timer) ResetAt(deadline int64) error {
	if deadline <= 0 {
		deadline = 1
	}
	return t.set(unix.TFD_TIMER_ABSTIME, unix.NsecToTimespec(deadline))
}

// Stop disarms the timer. Stopping a disarmed timer does nothing.
func (t *Timer) Stop() error {
	return t.set(0, unix.Timespec{})
}

func (t *Timer) set(flags int, value unix.Timespec) error {
	if t.fd < 0 {
		return os.ErrClosed
	}
	spec := unix.ItimerSpec{Value: value}
	if err := unix.TimerfdSettime(t.fd, flags, &spec, nil); err != nil {
		return fmt.Errorf("loop: timer: %w", os.NewSyscallError("timerfd_settime", err))
	}
	return nil
}

// Close disarms the timer and releases its timerfd.
func (t *Timer) Close() error {
	if t.fd < 0 {
		return os.ErrClosed
	}
	err := t.l.Remove(t.fd)
	if cerr := unix.Close(t.fd); err == nil && cerr != nil {
		err = os.NewSyscallError("close", cerr)
	}
	delete(t.l.timers, t)
	t.fd = -1
	return err
}

// expired reads the expiration count. timerfd_settime(2) zeroes the count, so
// EAGAIN here means the timer was re-armed or stopped after the expiry that
// woke epoll: that expiry no longer counts.
func (t *Timer) expired(uint32) {
	var buf [8]byte
	if _, err := unix.Read(t.fd, buf[:]); err != nil {
		return
	}
	t.f()
}
