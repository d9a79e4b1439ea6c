package loop

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Handler is called on the loop goroutine with the epoll events (EPOLLIN,
// EPOLLOUT, EPOLLHUP, ...) that made its file descriptor ready.
type Handler func(events uint32)

// maxEvents bounds the epoll_wait(2) batch. A larger backlog is served over
// several batches; level-triggered registrations lose nothing.
const maxEvents = 128

// A source is one registered file descriptor.
type source struct {
	fd int
	h  Handler
}

// Loop is a single-threaded epoll loop.
//
// Add, Modify, Remove, NewTimer and Signals must be called on the loop
// goroutine (from a handler), or before Run starts. Post and Close may be
// called from any goroutine.
type Loop struct {
	epfd   int
	wakefd int // eventfd: the only descriptor other goroutines touch

	// Owned by the loop goroutine. Registrations are keyed by a token, not by
	// the descriptor number, so that an event for a descriptor removed earlier
	// in the same batch is dropped even if the number was reused meanwhile.
	sources map[uint32]*source
	tokens  map[int]uint32
	next    uint32
	events  []unix.EpollEvent
	timers  map[*Timer]struct{}
	onSig   func(unix.Signal)

	// woken is set by whoever writes the eventfd and cleared by the loop
	// before it looks at posted work, so that a burst of wake-ups costs one
	// write(2).
	woken   atomic.Bool
	signals atomic.Uint64 // pending signals: bit n-1 for signal n
	closing atomic.Bool

	mu      sync.Mutex // guards the fields below and the eventfd's lifetime
	posted  []func()
	closed  bool
	running bool
	done    chan struct{} // closed by Close: stops the signal bridges
}

// wakeToken is the token of the loop's own eventfd.
const wakeToken = 0

// New returns a loop with its epoll set and eventfd. Close must be called to
// release them.
func New() (l *Loop, err error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	defer func() {
		if err != nil {
			unix.Close(epfd)
		}
	}()
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, os.NewSyscallError("eventfd", err)
	}
	defer func() {
		if err != nil {
			unix.Close(wakefd)
		}
	}()
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeToken}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	return &Loop{
		epfd:    epfd,
		wakefd:  wakefd,
		sources: make(map[uint32]*source),
		tokens:  make(map[int]uint32),
		events:  make([]unix.EpollEvent, maxEvents),
		timers:  make(map[*Timer]struct{}),
		done:    make(chan struct{}),
	}, nil
}

// Add registers fd for events (EPOLLIN, EPOLLOUT, ...; level-triggered unless
// EPOLLET is given) and calls h on the loop goroutine when it is ready. The
// caller keeps ownership of fd and must Remove it before closing it.
func (l *Loop) Add(fd int, events uint32, h Handler) error {
	if _, ok := l.tokens[fd]; ok {
		return fmt.Errorf("loop: add fd %d: already registered", fd)
	}
	tok := l.token()
	ev := unix.EpollEvent{Events: events, Fd: int32(tok)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("loop: add fd %d: %w", fd, os.NewSyscallError("epoll_ctl", err))
	}
	l.sources[tok] = &source{fd: fd, h: h}
	l.tokens[fd] = tok
	return nil
}

// token returns an unused registration token. Tokens are 32 bits wide because
// that is what struct epoll_event carries on every architecture; they wrap
// after 2^32 registrations, skipping the ones still in use.
func (l *Loop) token() uint32 {
	for {
		l.next++
		if _, used := l.sources[l.next]; l.next != wakeToken && !used {
			return l.next
		}
	}
}

// Modify changes the events fd is registered for.
func (l *Loop) Modify(fd int, events uint32) error {
	tok, ok := l.tokens[fd]
	if !ok {
		return fmt.Errorf("loop: modify fd %d: not registered", fd)
	}
	ev := unix.EpollEvent{Events: events, Fd: int32(tok)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, fd, &ev); err != nil {
		return fmt.Errorf("loop: modify fd %d: %w", fd, os.NewSyscallError("epoll_ctl", err))
	}
	return nil
}

// Remove unregisters fd. Its handler is not called again, not even for
// events already collected in the batch being dispatched.
func (l *Loop) Remove(fd int) error {
	tok, ok := l.tokens[fd]
	if !ok {
		return fmt.Errorf("loop: remove fd %d: not registered", fd)
	}
	delete(l.tokens, fd)
	delete(l.sources, tok)
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil); err != nil {
		return fmt.Errorf("loop: remove fd %d: %w", fd, os.NewSyscallError("epoll_ctl", err))
	}
	return nil
}

// Run dispatches events until Close is called, then releases the loop's
// descriptors and returns nil. It returns an error only if epoll_wait(2)
// fails, and os.ErrClosed if the loop was closed before Run started.
func (l *Loop) Run() error {
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		return os.ErrClosed
	case l.running:
		l.mu.Unlock()
		return errors.New("loop: Run called while running")
	}
	l.running = true
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.running = false
		if l.closed {
			l.release()
		}
	}()

	for !l.closing.Load() {
		n, err := unix.EpollWait(l.epfd, l.events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("epoll_wait", err)
		}
		for i := 0; i < n && !l.closing.Load(); i++ {
			ev := &l.events[i]
			tok := uint32(ev.Fd)
			if tok == wakeToken {
				l.wakeup()
				continue
			}
			if src, ok := l.sources[tok]; ok {
				src.h(ev.Events)
			}
		}
	}
	return nil
}

// wakeup runs on the loop goroutine when the eventfd is readable: it clears
// the eventfd, then delivers pending signals and posted functions.
func (l *Loop) wakeup() {
	var buf [8]byte
	// EAGAIN only means another batch already cleared it.
	_, _ = unix.Read(l.wakefd, buf[:])
	l.woken.Store(false)

	if bits := l.signals.Swap(0); bits != 0 && l.onSig != nil {
		for n := 1; bits != 0 && !l.closing.Load(); n++ {
			if bits&1 != 0 {
				l.onSig(unix.Signal(n))
			}
			bits >>= 1
		}
	}

	l.mu.Lock()
	posted := l.posted
	l.posted = nil
	l.mu.Unlock()
	for _, f := range posted {
		if l.closing.Load() {
			return // Close, from the function before: the rest is dropped
		}
		f()
	}
}

// poke writes the eventfd unless a wake-up is already pending. l.mu must be
// held: Close releases the eventfd under it.
func (l *Loop) poke() {
	if l.closed || !l.woken.CompareAndSwap(false, true) {
		return
	}
	one := [8]byte{1}
	// EAGAIN (counter saturated) still leaves the eventfd readable.
	_, _ = unix.Write(l.wakefd, one[:])
}

// Post arranges for f to run on the loop goroutine, in order with the other
// posted functions. It is safe to call from any goroutine and never blocks.
// It returns os.ErrClosed after Close; a function posted before Close that
// has not run when Close is called is dropped, like the rest of a batch.
func (l *Loop) Post(f func()) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return os.ErrClosed
	}
	l.posted = append(l.posted, f)
	l.poke()
	return nil
}

// Close stops the loop. It may be called from any goroutine, including from a
// handler: Run returns after the handler in progress, without dispatching the
// rest of its batch, and releases the loop's descriptors (epoll, eventfd and
// timers; descriptors passed to Add stay open). If Run is not running, Close
// releases them at once. A second Close returns os.ErrClosed.
func (l *Loop) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return os.ErrClosed
	}
	l.poke() // before closed is set: poke refuses once it is
	l.closed = true
	l.closing.Store(true)
	close(l.done)
	if !l.running {
		return l.release()
	}
	return nil
}

// release closes the loop's own descriptors. l.mu must be held.
func (l *Loop) release() error {
	var errs []error
	for t := range l.timers {
		if err := unix.Close(t.fd); err != nil {
			errs = append(errs, os.NewSyscallError("close", err))
		}
		t.fd = -1
	}
	l.timers = nil
	if err := unix.Close(l.wakefd); err != nil {
		errs = append(errs, os.NewSyscallError("close", err))
	}
	if err := unix.Close(l.epfd); err != nil {
		errs = append(errs, os.NewSyscallError("close", err))
	}
	l.sources, l.tokens = nil, nil
	return errors.Join(errs...)
}
