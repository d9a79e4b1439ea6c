package control

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vminit/vminit/internal/event"
	"github.com/vminit/vminit/loop"
	"github.com/vminit/vminit/vsockraw"
)

// Handler answers requests. Its methods run on the loop goroutine.
type Handler interface {
	// Status returns the reply to a status request.
	Status() event.Event
	// Shutdown returns the reply to a shutdown request (kind Accepted, or
	// Error) and, if a new shutdown must begin, the function that begins it.
	// The server writes the reply and subscribes the connection to the
	// events before it calls start, so the host reads "accepted" before any
	// signal is sent.
	Shutdown(r Request) (reply event.Event, start func())
}

// Limits bound what a client can cost.
type Limits struct {
	// MaxConns is the number of connections served at once; beyond it, a
	// connection is accepted, told so, and closed.
	MaxConns int
	// Idle is how long a connection may take to send a complete request
	// (and, between requests, the next one). Subscribers to a shutdown wait
	// for its events without one.
	Idle time.Duration
	// MaxOutput is the most output buffered for a client that does not read
	// it; beyond it the client is dropped.
	MaxOutput int
}

// DefaultLimits are the documented limits.
var DefaultLimits = Limits{MaxConns: 64, Idle: 10 * time.Second, MaxOutput: 1 << 20}

// acceptBatch bounds the connections accepted per readiness event: a client
// that connects as fast as it can must not keep the loop in one handler
// (starving reaping); the level-triggered listener fires again next turn.
const acceptBatch = 16

// acceptRetry is how long a listener rests after accept4(2) fails for want
// of descriptors, instead of spinning on a pending connection.
const acceptRetry = 100 * time.Millisecond

// Server serves the control protocol on listeners and ports registered with
// one event loop. Its methods run on the loop goroutine.
type Server struct {
	loop   *loop.Loop
	h      Handler
	log    *slog.Logger
	limits Limits

	listeners []*listener
	conns     map[*conn]bool
	scratch   [MaxLine]byte

	finishing bool
	pending   map[*conn]bool // subscribers that have not read the end yet
	done      func()
}

type listener struct {
	l     *vsockraw.Listener
	retry *loop.Timer
}

// NewServer returns a server with no listeners.
func NewServer(l *loop.Loop, h Handler, log *slog.Logger, limits Limits) *Server {
	return &Server{loop: l, h: h, log: log, limits: limits, conns: make(map[*conn]bool)}
}

// Listen serves the protocol on a. For vsock, allow decides which peers may
// connect (nil allows all). A port is opened and served as one long-lived
// connection.
func (s *Server) Listen(a vsockraw.Addr, allow func(vsockraw.Peer) bool) error {
	if a.Kind == vsockraw.Port {
		c, err := vsockraw.OpenPort(a.Path)
		if err != nil {
			return err
		}
		if _, err := s.serve(c, vsockraw.Peer{Kind: vsockraw.Port}); err != nil {
			c.Close()
			return err
		}
		return nil
	}
	vl, err := vsockraw.Listen(a, 128)
	if err != nil {
		return err
	}
	vl.Allow = allow
	ln := &listener{l: vl}
	if ln.retry, err = s.loop.NewTimer(func() { _ = s.loop.Modify(vl.FD(), unix.EPOLLIN) }); err != nil {
		vl.Close()
		return err
	}
	if err := s.loop.Add(vl.FD(), unix.EPOLLIN, func(uint32) { s.accept(ln) }); err != nil {
		ln.retry.Close()
		vl.Close()
		return err
	}
	s.listeners = append(s.listeners, ln)
	return nil
}

// Conns returns the number of open connections (a port counts as one).
func (s *Server) Conns() int { return len(s.conns) }

func (s *Server) accept(ln *listener) {
	for range acceptBatch {
		c, peer, err := ln.l.Accept()
		switch {
		case err == unix.EAGAIN:
			return
		case errors.Is(err, vsockraw.ErrRejected):
			s.log.Info("control: connection refused: peer not allowed", "peer", peer.String(), "listener", ln.l.Addr().String())
			continue
		case err != nil:
			// EMFILE and the like: the pending connection stays, and a
			// level-triggered listener would wake the loop at once again.
			s.log.Error("control: accept", "err", err, "listener", ln.l.Addr().String())
			_ = s.loop.Modify(ln.l.FD(), 0)
			_ = ln.retry.Reset(acceptRetry)
			return
		}
		if len(s.conns) >= s.limits.MaxConns {
			e := event.Event{Kind: event.Error, Err: fmt.Sprintf("busy: %d connections open, try again", len(s.conns))}
			_, _ = c.Write(e.AppendJSON(nil)) // best effort: the socket buffer is empty
			c.Close()
			continue
		}
		if _, err := s.serve(c, peer); err != nil {
			s.log.Error("control: serve", "err", err)
			c.Close()
		}
	}
}

// conn is one client: an accepted socket, or a port.
type conn struct {
	s          *Server
	c          *vsockraw.Conn
	peer       vsockraw.Peer
	in         []byte // a partial request line
	out        []byte // replies and events not yet written
	idle       *loop.Timer
	events     uint32 // registered epoll events
	subscriber bool   // receives the shutdown's events
	closing    bool   // close once out is written (sockets)
	ending     bool   // the reboot event is queued: done once written and the host's EOF seen
	written    bool   // ... and it is written
	hostEOF    bool   // the host half-closed: no more requests, but it may read on
	dead       bool
}

func (s *Server) serve(vc *vsockraw.Conn, peer vsockraw.Peer) (*conn, error) {
	c := &conn{s: s, c: vc, peer: peer, events: unix.EPOLLIN | unix.EPOLLRDHUP}
	if vc.IsPort() {
		// A virtio-serial port reports EPOLLHUP for as long as the host
		// side is closed: level-triggered, that would spin the loop.
		c.events = unix.EPOLLIN | unix.EPOLLET
	}
	var err error
	if c.idle, err = s.loop.NewTimer(c.idleExpired); err != nil {
		return nil, err
	}
	if err := s.loop.Add(vc.FD(), c.events, c.ready); err != nil {
		c.idle.Close()
		return nil, err
	}
	if !vc.IsPort() {
		_ = c.idle.Reset(s.limits.Idle)
	}
	s.conns[c] = true
	return c, nil
}

func (c *conn) ready(ev uint32) {
	if ev&unix.EPOLLOUT != 0 {
		c.flush()
	}
	got := false
	if !c.dead && c.events&unix.EPOLLIN != 0 && ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP) != 0 {
		got = c.read()
	}
	// A port's EPOLLHUP that comes with data is stale: see read.
	if !c.dead && ev&(unix.EPOLLHUP|unix.EPOLLERR) != 0 && !(got && c.c.IsPort()) {
		c.hangup()
	}
}

// read drains the descriptor (a port is edge-triggered), handling each
// complete line, and reports whether it read anything.
//
// A virtio-serial port learns that the host opened it from a control
// message, and gets the host's data on another virtqueue: the data can come
// first. Until the message is handled, poll(2) says EPOLLHUP and read(2)
// returns 0 once the data is read, although the host is there and waits for
// a reply (seen under QEMU q35: the request was served, the subscription
// dropped, and the host's stream ended after the sigterm event). So for a
// port, end of file after data in the same wake-up is not the end of the
// session; a host that really closes brings a wake-up of its own.
func (c *conn) read() (got bool) {
	for !c.dead && !c.closing {
		n, err := c.c.Read(c.s.scratch[:])
		switch {
		case err == unix.EAGAIN:
			return got
		case err != nil && c.c.IsPort():
			// EIO and the like while the host side is gone: the port
			// stays for the next session (edge-triggered: no spin).
			c.resetPort()
			return got
		case err != nil:
			c.drop(fmt.Sprintf("read: %v", err))
			return got
		case n == 0:
			if !(got && c.c.IsPort()) {
				c.eof()
			}
			return got
		}
		got = true
		c.feed(c.s.scratch[:n])
	}
	return got
}

func (c *conn) feed(b []byte) {
	for len(b) > 0 && !c.dead && !c.closing {
		i := indexNewline(b)
		if i < 0 {
			if len(c.in)+len(b) >= MaxLine {
				c.fail(fmt.Errorf("request longer than %d bytes", MaxLine-1))
				return
			}
			c.in = append(c.in, b...)
			return
		}
		line := b[:i+1]
		if len(c.in) > 0 {
			line = append(c.in, line...)
			c.in = c.in[:0]
		}
		b = b[i+1:]
		if len(line) > MaxLine {
			c.fail(fmt.Errorf("request longer than %d bytes", MaxLine-1))
			return
		}
		c.request(line)
	}
}

func indexNewline(b []byte) int {
	for i, x := range b {
		if x == '\n' {
			return i
		}
	}
	return -1
}

func (c *conn) request(line []byte) {
	r, err := ParseRequest(line)
	if err == ErrEmpty {
		return
	}
	if err != nil {
		c.fail(err)
		return
	}
	if !c.subscriber && !c.c.IsPort() {
		_ = c.idle.Reset(c.s.limits.Idle)
	}
	switch r.Verb {
	case Ping:
		c.send(event.Event{Kind: event.Pong, Mono: event.Now()})
	case Status:
		c.send(c.s.h.Status())
	case Shutdown:
		r.From = c.peer.String()
		reply, start := c.s.h.Shutdown(r)
		if reply.Kind == event.Error {
			c.send(reply)
			return
		}
		c.subscriber = true
		_ = c.idle.Stop()
		c.send(reply)
		if start != nil {
			start()
		}
	}
}

// fail answers a bad request with an error line, then closes the connection
// (a port just forgets the line).
func (c *conn) fail(err error) {
	c.send(event.Event{Kind: event.Error, Mono: event.Now(), Err: err.Error()})
	c.in = c.in[:0]
	if !c.c.IsPort() {
		c.closeAfterFlush()
	}
}

func (c *conn) idleExpired() {
	if c.dead || c.subscriber {
		return
	}
	c.fail(fmt.Errorf("no complete request for %v: closing", c.s.limits.Idle))
}

// eof: the peer half-closed (or, for a port, the host closed the device).
// A subscriber's host may well half-close after its request, as
// `echo shutdown | socat - ...` does, and read the events on: it keeps its
// stream.
func (c *conn) eof() {
	if c.c.IsPort() {
		c.resetPort()
		return
	}
	if !c.subscriber {
		c.closeAfterFlush()
		return
	}
	c.hostEOF = true
	c.events &^= unix.EPOLLIN | unix.EPOLLRDHUP
	_ = c.s.loop.Modify(c.c.FD(), c.events)
	if c.written {
		c.done() // the host has the reboot event and says it is done
	}
}

// done: the host has the reboot event. The socket is left open, and out of
// the loop: it closes when PID 1 goes, which is the end of the stream the
// host waits for.
func (c *conn) done() {
	if c.s.pending[c] {
		c.s.ended(c)
	}
	if !c.dead {
		c.dead = true
		_ = c.idle.Close()
		_ = c.s.loop.Remove(c.c.FD())
		delete(c.s.conns, c)
	}
}

// hangup: EPOLLHUP or EPOLLERR. For a socket, the host is gone. A port's
// host closed the device: the port waits for the next session.
func (c *conn) hangup() {
	if c.c.IsPort() {
		c.resetPort()
		return
	}
	c.close()
}

// resetPort forgets a port's session: its partial request, unsent output
// and subscription. The descriptor stays registered for the next session.
func (c *conn) resetPort() {
	if c.s.pending[c] {
		c.s.ended(c) // the host will read nothing more
	}
	c.in, c.out, c.subscriber, c.ending, c.written = c.in[:0], c.out[:0], false, false, false
	c.setOut(false)
}

// send queues an event line and writes what it can at once.
func (c *conn) send(e event.Event) { c.write(e.AppendJSON(nil)) }

func (c *conn) write(line []byte) {
	if c.dead {
		return
	}
	if len(c.out)+len(line) > c.s.limits.MaxOutput {
		if c.c.IsPort() {
			// Nobody reads the port (the host side is closed): the old
			// output is stale, the port must stay.
			c.out = c.out[:0]
		} else {
			c.drop(fmt.Sprintf("client does not read: %d bytes waiting", len(c.out)))
			return
		}
	}
	c.out = append(c.out, line...)
	if c.events&unix.EPOLLOUT == 0 {
		c.flush()
	}
}

// flush writes buffered output until done or the descriptor is full, then
// finishes a pending close or half-close.
func (c *conn) flush() {
	for len(c.out) > 0 {
		n, err := c.c.Write(c.out)
		if err == unix.EAGAIN {
			c.setOut(true)
			return
		}
		if err != nil {
			if c.c.IsPort() {
				// EAGAIN-like for a port whose host side is closed is
				// reported as EAGAIN; anything else: drop the output.
				c.out = c.out[:0]
				break
			}
			c.drop(fmt.Sprintf("write: %v", err))
			return
		}
		c.out = c.out[n:]
	}
	c.out = c.out[:0]
	c.setOut(false)
	switch {
	case c.closing:
		c.close()
	case c.ending:
		// The reboot event is in the socket. A host that half-closed
		// long ago (socat) cannot say more: it is done.
		c.ending, c.written = false, true
		if c.hostEOF {
			c.done()
		}
	}
}

func (c *conn) setOut(on bool) {
	want := c.events &^ unix.EPOLLOUT
	if on {
		want |= unix.EPOLLOUT
	}
	if want != c.events && !c.dead {
		c.events = want
		_ = c.s.loop.Modify(c.c.FD(), want)
	}
}

// closeAfterFlush stops reading and closes the connection once its output
// is written: the socket is writable, so EPOLLOUT comes at the next turn.
func (c *conn) closeAfterFlush() {
	c.closing = true
	c.events = c.events&^(unix.EPOLLIN|unix.EPOLLRDHUP) | unix.EPOLLOUT
	_ = c.s.loop.Modify(c.c.FD(), c.events)
}

func (c *conn) drop(why string) {
	c.s.log.Info("control: dropping client", "peer", c.peer.String(), "why", why)
	c.close()
}

func (c *conn) close() {
	if c.dead {
		return
	}
	c.dead = true
	_ = c.idle.Close()
	_ = c.s.loop.Remove(c.c.FD())
	_ = c.c.Close()
	delete(c.s.conns, c)
	if c.s.pending[c] {
		c.s.ended(c)
	}
}

// Broadcast sends an event to every subscriber.
func (s *Server) Broadcast(e event.Event) {
	var line []byte
	for c := range s.conns {
		if c.subscriber {
			if line == nil {
				line = e.AppendJSON(nil)
			}
			c.write(line)
		}
	}
}

// Finish is the shutdown's last step before reboot(2) (see
// shutdown.Sequence.OnFinish): it stops accepting, and calls done once every
// subscriber's host has been sent the reboot event and has closed (or
// half-closed) its side, so that power-off does not cut the last event. The
// guest never closes first: a host reads on until the end of the stream,
// which comes when PID 1 is gone. The sequence bounds the wait.
func (s *Server) Finish(done func()) {
	s.finishing = true
	for _, ln := range s.listeners {
		_ = s.loop.Remove(ln.l.FD())
		_ = ln.retry.Close()
		_ = ln.l.Close()
	}
	s.listeners = nil
	s.pending = make(map[*conn]bool)
	for c := range s.conns {
		if c.subscriber {
			s.pending[c] = true
		}
	}
	s.done = done
	if len(s.pending) == 0 {
		done()
		return
	}
	for c := range s.conns {
		if s.pending[c] {
			c.ending = true
			if c.events&unix.EPOLLOUT == 0 {
				c.flush()
			}
		}
	}
}

func (s *Server) ended(c *conn) {
	delete(s.pending, c)
	if len(s.pending) == 0 && s.done != nil {
		done := s.done
		s.done = nil
		done()
	}
}
