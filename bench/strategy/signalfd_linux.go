package main

import (
	"fmt"
	"os"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vminit/vminit/internal/event"
)

// sigfd is the textbook signalfd design: the loop's goroutine is locked to
// its thread, which blocks SIGCHLD and reads it from a signalfd in an epoll
// set. Each wake-up drains waitpid(-1, WNOHANG) until nothing is left to
// reap, so coalesced SIGCHLDs lose nothing; what it loses is every SIGCHLD
// that one of the runtime's other threads (where SIGCHLD is unblocked) takes
// first. An exit that no wake-up reported is found only by the drain at the
// grace deadline (or the kill timeout): those are counted as lost.
type sigfd struct {
	epfd, sfd, tfd, efd int
	phase               int
	seen                map[int32]struct{}
}

// The phases of the loop.
const (
	waiting = iota
	terminating
	killing
	done
)

func (s *sigfd) prepare() error {
	runtime.LockOSThread() // for good: the loop and its signal mask live here
	var set unix.Sigset_t
	set.Val[(unix.SIGCHLD-1)/64] |= 1 << ((uint(unix.SIGCHLD) - 1) % 64)
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, nil); err != nil {
		return os.NewSyscallError("pthread_sigmask", err)
	}
	var err error
	if s.sfd, err = unix.Signalfd(-1, &set, unix.SFD_CLOEXEC|unix.SFD_NONBLOCK); err != nil {
		return os.NewSyscallError("signalfd", err)
	}
	if s.tfd, err = unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_CLOEXEC|unix.TFD_NONBLOCK); err != nil {
		return os.NewSyscallError("timerfd_create", err)
	}
	if s.efd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return os.NewSyscallError("eventfd", err)
	}
	if s.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return os.NewSyscallError("epoll_create1", err)
	}
	for _, fd := range []int{s.sfd, s.tfd, s.efd} {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		if err := unix.EpollCtl(s.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return os.NewSyscallError("epoll_ctl", err)
		}
	}
	// The trigger is SIGTERM, which the runtime must catch (it would exit
	// otherwise): a goroutine turns it into an eventfd wake-up.
	go func() {
		<-trigger
		one := [8]byte{1}
		_, _ = unix.Write(s.efd, one[:])
	}()
	s.seen = make(map[int32]struct{})
	return nil
}

func (s *sigfd) shutdown(c *config, r *report) {
	events := make([]unix.EpollEvent, 8)
	for s.phase != done {
		n, err := unix.EpollWait(s.epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "strategy:", os.NewSyscallError("epoll_wait", err))
			r.left = 1
			break
		}
		for _, ev := range events[:n] {
			if s.phase == done {
				break
			}
			switch ev.Fd {
			case int32(s.sfd):
				s.readSignals()
				if s.phase != waiting {
					r.wakeups++
				}
				s.drain(r, false)
			case int32(s.efd):
				var buf [8]byte
				_, _ = unix.Read(s.efd, buf[:])
				r.trigger = event.Now()
				kill(unix.SIGTERM)
				r.term = event.Now()
				r.graceEnd = r.term + int64(c.grace)
				s.phase = terminating
				s.arm(c.grace)
				s.drain(r, false)
			case int32(s.tfd):
				var buf [8]byte
				_, _ = unix.Read(s.tfd, buf[:])
				if s.drain(r, true) {
					break
				}
				if s.phase == terminating {
					kill(unix.SIGKILL)
					r.kill = event.Now()
					s.phase = killing
					s.arm(c.killTimeout)
				} else {
					r.left = 1
					s.phase = done
				}
			}
		}
	}
	r.done = event.Now()
}

// readSignals reads every pending siginfo and notes the pids they name.
func (s *sigfd) readSignals() {
	var buf [32]unix.SignalfdSiginfo
	size := int(unsafe.Sizeof(buf[0]))
	b := unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), len(buf)*size)
	for {
		n, err := unix.Read(s.sfd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return
		}
		for i := 0; i < n/size; i++ {
			s.seen[int32(buf[i].Pid)] = struct{}{}
		}
	}
}

// drain reaps every exited child. It returns true, and ends the loop, once
// waitpid reports ECHILD after the trigger. byTimer says the drain was made
// by a deadline, not a signal: what it reaps had exited unreported.
func (s *sigfd) drain(r *report, byTimer bool) bool {
	for {
		pid, err := unix.Wait4(-1, nil, unix.WNOHANG, nil)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.ECHILD:
			if s.phase != waiting {
				s.phase = done
				return true
			}
			return false
		case err != nil:
			fmt.Fprintln(os.Stderr, "strategy:", os.NewSyscallError("wait4", err))
			return false
		case pid == 0:
			return false
		}
		if s.phase == waiting {
			continue
		}
		r.reaped++
		if byTimer {
			r.lost++
		}
		if _, ok := s.seen[int32(pid)]; !ok {
			r.unseen++
		}
	}
}

// arm sets the timerfd to fire once, d from now.
func (s *sigfd) arm(d time.Duration) {
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	if err := unix.TimerfdSettime(s.tfd, 0, &spec, nil); err != nil {
		fmt.Fprintln(os.Stderr, "strategy:", os.NewSyscallError("timerfd_settime", err))
	}
}
