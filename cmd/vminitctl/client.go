package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vminit/vminit/internal/control"
	"github.com/vminit/vminit/internal/event"
)

// Exit statuses.
const (
	exitOK          = 0
	exitKilled      = 1 // done, but some process needed SIGKILL
	exitUsage       = 2
	exitUnreachable = 3 // could not connect, or timed out
	exitProtocol    = 4 // an error reply, garbage, or the stream ended early
)

// interruptLinger is how long an interrupted vminitctl still reads what
// the guest sent.
const interruptLinger = 100 * time.Millisecond

// powerOffWait bounds the wait for the guest to close the connection after
// the reboot event: a VM that only halts (Firecracker x86_64 on power-off)
// keeps it open.
const powerOffWait = 2 * time.Second

// errGarbage is a line from the guest that is not an event.
var errGarbage = errors.New("garbage from the guest")

// result is one target's outcome.
type result struct {
	to     target
	code   int
	err    error
	reply  event.Event // pong, status or accepted
	events []event.Event
	lines  [][]byte // as received
	tl     event.Timeline

	request  time.Time // the request was written
	accepted time.Duration
	rebooted time.Duration // request → reboot event
	closed   time.Duration // request → the guest closed the connection (0: not seen)
}

// exchange sends req to t and reads the reply and, for a shutdown, the
// events until the reboot event and the end of the stream. line, if set, is
// called with every line as it arrives.
func exchange(ctx context.Context, t target, req control.Request, timeout time.Duration, line func([]byte)) (r result) {
	r.to = t
	fail := func(code int, err error) result {
		r.code, r.err = code, err
		return r
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	s, err := dial(dctx, t)
	if err != nil {
		return fail(exitUnreachable, err)
	}
	defer s.Close()
	// An interruption (SIGINT, SIGTERM: ctx) ends the exchange once what
	// the guest already sent is read (it lingers that long), and no later
	// deadline may undo that: inside a guest, the SIGTERM of the shutdown
	// comes right after "accepted" and "trigger", which are worth printing.
	var mu sync.Mutex
	var interrupted time.Time
	setDeadline := func(t time.Time) {
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() != nil {
			if interrupted.IsZero() {
				interrupted = time.Now().Add(interruptLinger)
			}
			t = interrupted
		}
		s.SetDeadline(t)
	}
	stop := context.AfterFunc(ctx, func() { setDeadline(time.Now()) })
	defer stop()
	deadline := time.Now().Add(timeout)
	setDeadline(deadline)
	r.request = time.Now()
	rd := bufio.NewReaderSize(s, 64<<10)
	if _, err := io.WriteString(s, req.String()+"\n"); err != nil {
		// The guest may have answered and closed before it read the
		// request (it is busy): its answer says more than EPIPE.
		if b, rerr := rd.ReadBytes('\n'); rerr == nil {
			var e event.Event
			if json.Unmarshal(b, &e) == nil && e.Kind == event.Error {
				return fail(exitProtocol, fmt.Errorf("%s: the guest refused the connection: %s", t, e.Err))
			}
		}
		return fail(exitUnreachable, fmt.Errorf("%s: send: %w", t, err))
	}

	next := func() (event.Event, []byte, error) {
		b, err := rd.ReadBytes('\n')
		if err != nil {
			return event.Event{}, nil, err
		}
		b = b[:len(b)-1]
		var e event.Event
		if err := json.Unmarshal(b, &e); err != nil || e.Kind == "" {
			return event.Event{}, b, fmt.Errorf("%w: %q", errGarbage, clip(b))
		}
		r.lines = append(r.lines, b)
		if line != nil {
			line(b)
		}
		return e, b, nil
	}
	readErr := func(err error, what string) result {
		var ne interface{ Timeout() bool }
		switch {
		case ctx.Err() != nil:
			return fail(exitUnreachable, fmt.Errorf("%s: interrupted while waiting for %s", t, what))
		case errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded):
			return fail(exitUnreachable, fmt.Errorf("%s: timed out waiting for %s", t, what))
		case errors.Is(err, io.EOF):
			return fail(exitProtocol, fmt.Errorf("%s: the stream ended before %s", t, what))
		case errors.Is(err, errGarbage):
			return fail(exitProtocol, fmt.Errorf("%s: %w", t, err))
		}
		// A reset or another read error on an established connection.
		return fail(exitProtocol, fmt.Errorf("%s: reading %s: %w", t, what, err))
	}

	e, _, err := next()
	if err != nil {
		return readErr(err, "a reply")
	}
	r.reply = e
	if e.Kind == event.Error {
		return fail(exitProtocol, fmt.Errorf("%s: the guest refused %q: %s", t, req.String(), e.Err))
	}
	want := map[control.Verb]event.Kind{control.Ping: event.Pong, control.Status: event.State, control.Shutdown: event.Accepted}[req.Verb]
	if e.Kind != want {
		return fail(exitProtocol, fmt.Errorf("%s: replied %s to %s", t, e.Kind, req.Verb))
	}
	if req.Verb != control.Shutdown {
		r.accepted = time.Since(r.request)
		return r
	}
	r.accepted = time.Since(r.request)

	// The stream: up to the grace plus the timeout for the reboot event.
	setDeadline(time.Now().Add(e.Grace + timeout))
	for !r.tl.Done() {
		e, _, err := next()
		if err != nil {
			return readErr(err, "the reboot event")
		}
		r.events = append(r.events, e)
		r.tl.Add(e)
	}
	r.rebooted = time.Since(r.request)
	// Done: say so (the guest powers off once its hosts have read the end),
	// then read until the guest's side closes, which is PID 1 going away.
	_ = s.CloseWrite()
	setDeadline(time.Now().Add(powerOffWait))
	if _, err := io.Copy(io.Discard, rd); err == nil {
		r.closed = time.Since(r.request)
	}
	if !r.tl.Graceful() {
		r.code = exitKilled
	}
	return r
}

func clip(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}
