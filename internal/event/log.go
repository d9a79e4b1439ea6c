package event

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
)

// Sink writes events to one writer, as JSON lines or as human-readable lines.
// It is safe for concurrent use. Handler adapts it to log/slog, so that
// ordinary log lines share the events' schema (kind Log).
type Sink struct {
	mu    sync.Mutex
	w     io.Writer
	json  atomic.Bool
	level slog.Level
	buf   []byte
}

// NewSink returns a Sink writing to w, JSON lines if json is set. Records below
// level are dropped; events are never dropped. If w is a Writer, the Sink
// formats its notice of dropped lines as a log event, so that a JSON stream
// stays JSON.
func NewSink(w io.Writer, json bool, level slog.Level) *Sink {
	s := &Sink{w: w, level: level}
	s.json.Store(json)
	if bw, ok := w.(*Writer); ok {
		bw.Notice = s.dropNotice
	}
	return s
}

func (l *Sink) dropNotice(n int) []byte {
	e := Event{Kind: Log, Mono: Now(), Level: "WARN", Msg: fmt.Sprintf("%d lines dropped: the output was too slow", n)}
	if l.json.Load() {
		return e.AppendJSON(nil)
	}
	return e.AppendText(nil)
}

// Emit writes e, stamping it with the current time if it has none. Write
// errors are ignored: a log must never stop what it describes. Writers that
// may block belong behind a Writer.
func (l *Sink) Emit(e Event) {
	if e.Mono == 0 {
		e.Mono = Now()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.json.Load() {
		l.buf = e.AppendJSON(l.buf[:0])
	} else {
		l.buf = e.AppendText(l.buf[:0])
	}
	_, _ = l.w.Write(l.buf)
}

// Handler returns a slog.Handler that turns records into events of kind Log.
func (l *Sink) Handler() slog.Handler { return &handler{log: l} }

type handler struct {
	log    *Sink
	attrs  []slog.Attr
	groups string
}

func (h *handler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= h.log.level
}

// Handle maps the attributes "err"/"error", "pid" and "comm" onto the event's
// fields and appends any other attribute to the message as key=value.
func (h *handler) Handle(_ context.Context, r slog.Record) error {
	e := Event{Kind: Log, Mono: Mono(r.Time), Level: r.Level.String(), Msg: r.Message}
	var extra strings.Builder
	add := func(a slog.Attr) bool {
		v := a.Value.Resolve()
		switch a.Key {
		case "err", "error":
			e.Err = v.String()
		case "pid":
			e.PID = int(v.Int64())
		case "comm":
			e.Comm = v.String()
		default:
			fmt.Fprintf(&extra, " %s%s=%s", h.groups, a.Key, quoteIfNeeded(v.String()))
		}
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	e.Msg += extra.String()
	if r.Time.IsZero() {
		e.Mono = 0
	}
	h.log.Emit(e)
	return nil
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), attrs...)
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	c := *h
	c.groups += name + "."
	return &c
}
