package event

import (
	"fmt"
	"io"
	"sync"
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

	mu      sync.Mutex
	buf     []byte
	dropped int
	flushes []func() // called once everything buffered before them is written
	kick    chan struct{}
	failed  error
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
	w.mu.Unlock()
	w.wake()
	return len(p), nil
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
// trying: a console can come back.
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
			if w.dropped > 0 && len(w.buf)+64 <= w.limit {
				w.buf = fmt.Appendf(w.buf, "vminit: log: %d lines dropped (output too slow)\n", w.dropped)
				w.dropped = 0
			}
			out, w.buf = w.buf, out[:0]
			flushes := w.flushes
			w.flushes = nil
			w.mu.Unlock()

			if len(out) > 0 {
				if _, err := w.dst.Write(out); err != nil {
					w.mu.Lock()
					if w.failed == nil {
						w.failed = err
					}
					w.mu.Unlock()
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
