package event

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
)

// Writer puts a goroutine between a caller that must never block and a
// destination that may: a serial console at 115200 baud takes about 9 ms for
// a 100-byte line, and PID 1's event loop cannot wait for it while processes
// are exiting. Write copies into a bounded buffer and returns at once; the
// goroutine writes whole batches. When the buffer is full, lines are
// dropped and counted, and the count is written when there is room again.
type Writer struct {
	dst   io.Writer
	limit int

	// Notice formats the line that reports dropped lines, in the
	// destination's encoding. It must not block or take locks that a
	// writer may hold while it calls Write.
	Notice func(dropped int) []byte

	mu      sync.Mutex
	buf     []byte
	dropped int
	flushes []func() // called once everything buffered before them is written
	kick    chan struct{}
	held    bool // Write does not wake the goroutine until Release
	failed  error
	gone    bool // the destination cannot be written again; run's only
}

// permanent reports write errors after which a destination is gone for good.
func permanent(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.EBADF) || errors.Is(err, os.ErrClosed)
}

// NewWriter returns a Writer that buffers up to limit bytes for dst.
func NewWriter(dst io.Writer, limit int) *Writer {
	w := &Writer{dst: dst, limit: limit, kick: make(chan struct{}, 1)}
	go w.run()
	return w
}

// Write buffers p, which should be whole lines. It never blocks and never
// fails; it drops p when the buffer is full.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	if len(w.buf)+len(p) > w.limit {
		w.dropped++
	} else {
		w.buf = append(w.buf, p...)
	}
	held := w.held
	w.mu.Unlock()
	if !held {
		w.wake()
	}
	return len(p), nil
}

// Hold makes Write buffer without waking the writer's goroutine, until
// Release: a burst of lines (a drain of exited processes) costs one wake-up
// and one write(2) instead of one each.
func (w *Writer) Hold() {
	w.mu.Lock()
	w.held = true
	w.mu.Unlock()
}

// Release ends Hold and hands what was buffered to the goroutine.
func (w *Writer) Release() {
	w.mu.Lock()
	w.held = false
	pending := len(w.buf) > 0
	w.mu.Unlock()
	if pending {
		w.wake()
	}
}

// Flush calls done, on the writer's goroutine, once everything written
// before it has been handed to the destination (or failed to be). Callers
// that must not wait forever bound it with a deadline of their own.
func (w *Writer) Flush(done func()) {
	w.mu.Lock()
	w.flushes = append(w.flushes, done)
	w.mu.Unlock()
	w.wake()
}

// Err returns the first write error, if any. After an error the Writer keeps
// trying (a console can come back), but for errors that cannot heal (EPIPE:
// the reader is gone; EBADF) it stops writing and discards from then on.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed
}

func (w *Writer) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *Writer) run() {
	var out []byte
	for range w.kick {
		for {
			w.mu.Lock()
			if n := w.dropped; n > 0 {
				w.dropped = 0
				w.mu.Unlock()
				notice := fmt.Appendf(nil, "vminit: %d lines dropped: the output was too slow\n", n)
				if w.Notice != nil {
					notice = w.Notice(n)
				}
				w.mu.Lock()
				if len(w.buf)+len(notice) <= w.limit {
					w.buf = append(w.buf, notice...)
				} else {
					w.dropped += n // next time
				}
			}
			out, w.buf = w.buf, out[:0]
			flushes := w.flushes
			w.flushes = nil
			w.mu.Unlock()

			if len(out) > 0 && !w.gone {
				if _, err := w.dst.Write(out); err != nil {
					w.mu.Lock()
					if w.failed == nil {
						w.failed = err
					}
					w.mu.Unlock()
					w.gone = permanent(err)
				}
			}
			for _, f := range flushes {
				f()
			}
			if len(out) == 0 && len(flushes) == 0 {
				break
			}
		}
	}
}
