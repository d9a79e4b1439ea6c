package loop

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Signals delivers the signals arriving on c, a channel filled by
// os/signal.Notify, to h on the loop goroutine. The caller keeps c and its
// Notify registration; registering as early as possible (before the loop
// exists) loses nothing, because c buffers what arrives until Signals starts
// draining it.
//
// A goroutine moves each signal from c into a pending set and pokes the
// loop's eventfd; the loop calls h once for every signal in the set, in
// ascending order. Signals that arrive again before h runs are coalesced. The
// goroutine stops when the loop is closed or c is closed. Signals may be
// called once per loop.
func (l *Loop) Signals(c <-chan os.Signal, h func(unix.Signal)) error {
	if l.onSig != nil {
		return errors.New("loop: Signals called twice")
	}
	l.onSig = h
	go l.bridge(c)
	return nil
}

func (l *Loop) bridge(c <-chan os.Signal) {
	for {
		select {
		case <-l.done:
			return
		case s, ok := <-c:
			if !ok {
				return
			}
			n, ok := s.(syscall.Signal)
			if !ok || n < 1 || n > 64 {
				continue
			}
			l.signals.Or(1 << (n - 1))
			l.mu.Lock()
			l.poke()
			l.mu.Unlock()
		}
	}
}
