package control

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vminit/vminit/internal/event"
	"github.com/vminit/vminit/loop"
	"github.com/vminit/vminit/vsockraw"
)

// fakeInit answers like PID 1 would, and records what it was asked.
type fakeInit struct {
	srv     *Server
	started int
	phase   string
}

func (f *fakeInit) Status() event.Event {
	return event.Event{Kind: event.State, Mono: event.Now(), Workload: "running", PID: 2, Phase: f.phase}
}

func (f *fakeInit) Shutdown(r Request) (event.Event, func()) {
	if f.phase != "running" {
		return event.Event{Kind: event.Accepted, Mono: event.Now(), Phase: f.phase}, nil
	}
	return event.Event{Kind: event.Accepted, Mono: event.Now(), Grace: r.Grace, Phase: "terminating"}, func() {
		f.started++
		f.phase = "terminating"
		f.srv.Broadcast(event.Event{Kind: event.Trigger, Mono: event.Now(), Source: "control"})
	}
}

// server runs a control server on a Unix socket in a loop on its own
// goroutine, and returns the socket's path and a way to run code on the
// loop goroutine.
type server struct {
	t    *testing.T
	l    *loop.Loop
	srv  *Server
	init *fakeInit
	path string
	done chan error
}

func newServer(t *testing.T, limits Limits) *server {
	t.Helper()
	l, err := loop.New()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, l: l, init: &fakeInit{phase: "running"}, path: filepath.Join(t.TempDir(), "ctl.sock"), done: make(chan error, 1)}
	s.srv = NewServer(l, s.init, slog.New(slog.DiscardHandler), limits)
	s.init.srv = s.srv
	a, _ := vsockraw.ParseAddr("unix:" + s.path)
	if err := s.srv.Listen(a, nil); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- l.Run() }()
	t.Cleanup(func() {
		l.Close()
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			t.Error("loop did not stop")
		}
	})
	return s
}

// on runs f on the loop goroutine and waits for it.
func (s *server) on(f func()) {
	s.t.Helper()
	ran := make(chan struct{})
	if err := s.l.Post(func() { f(); close(ran) }); err != nil {
		s.t.Fatal(err)
	}
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		s.t.Fatal("the loop is stuck")
	}
}

func (s *server) conns() (n int) { s.on(func() { n = s.srv.Conns() }); return n }

func (s *server) started() (n int) { s.on(func() { n = s.init.started }); return n }

func (s *server) dial() *net.UnixConn {
	s.t.Helper()
	c, err := net.Dial("unix", s.path)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c.(*net.UnixConn)
}

func readEvent(t *testing.T, r *bufio.Reader) event.Event {
	t.Helper()
	line, err := r.ReadBytes('\n')
	if err != nil {
		t.Fatalf("read: %v (got %q)", err, line)
	}
	var e event.Event
	if err := json.Unmarshal(line, &e); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	return e
}

// expectEOF reads until the end of the stream, failing on more events. A
// reset counts as an end: closing a socket with unread input (a client that
// sent too much) resets it.
func expectEOF(t *testing.T, r *bufio.Reader) {
	t.Helper()
	rest, err := io.ReadAll(r)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) || len(rest) > 0 {
		t.Fatalf("want the end of the stream, got %q, %v", rest, err)
	}
}

func TestPingStatus(t *testing.T) {
	s := newServer(t, DefaultLimits)
	c := s.dial()
	r := bufio.NewReader(c)
	io.WriteString(c, "ping\nstatus\r\n\n")
	if e := readEvent(t, r); e.Kind != event.Pong {
		t.Errorf("ping: %+v", e)
	}
	if e := readEvent(t, r); e.Kind != event.State || e.Workload != "running" {
		t.Errorf("status: %+v", e)
	}
	c.CloseWrite()
	expectEOF(t, r)
}

func TestSocketMode(t *testing.T) {
	s := newServer(t, DefaultLimits)
	st, err := os.Stat(s.path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 || st.Mode().Type() != os.ModeSocket {
		t.Fatalf("control socket mode %v, want a socket with mode 0600", st.Mode())
	}
}

// TestBadRequests: every bad request gets a JSON error line, then the end of
// the stream.
func TestBadRequests(t *testing.T) {
	s := newServer(t, DefaultLimits)
	for name, req := range map[string]string{
		"unknown verb": "reboot now\n",
		"garbage":      "\x00\x01\x02\n",
		"bad utf-8":    "ping \xff\xfe\n",
		"bad argument": "shutdown grace=forever\n",
		"4 KiB line":   strings.Repeat("a", MaxLine) + "\n",
		"no newline":   strings.Repeat("b", MaxLine+10),
	} {
		t.Run(name, func(t *testing.T) {
			c := s.dial()
			r := bufio.NewReader(c)
			io.WriteString(c, req)
			if e := readEvent(t, r); e.Kind != event.Error || e.Err == "" {
				t.Errorf("reply %+v, want an error", e)
			}
			expectEOF(t, r)
		})
	}
	if s.started() != 0 {
		t.Error("a bad request started a shutdown")
	}
}

// TestHugeLine: a 1 MiB line costs the server one error reply and one
// closed connection.
func TestHugeLine(t *testing.T) {
	s := newServer(t, DefaultLimits)
	c := s.dial()
	go c.Write(make([]byte, 1<<20)) // may fail with EPIPE once closed
	r := bufio.NewReader(c)
	if e := readEvent(t, r); e.Kind != event.Error || !strings.Contains(e.Err, "longer than") {
		t.Fatalf("reply %+v", e)
	}
	s.waitConns(0)
}

func (s *server) waitConns(n int) {
	s.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); s.conns() != n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			s.t.Fatalf("%d connections open, want %d", s.conns(), n)
		}
	}
}

// TestIdle: a client that sends half a line and stalls is told so and
// closed after the idle time.
func TestIdle(t *testing.T) {
	s := newServer(t, Limits{MaxConns: 8, Idle: 200 * time.Millisecond, MaxOutput: 1 << 20})
	start := time.Now() // before the server can accept, which arms the timer
	c := s.dial()
	io.WriteString(c, "sta")
	r := bufio.NewReader(c)
	if e := readEvent(t, r); e.Kind != event.Error || !strings.Contains(e.Err, "no complete request") {
		t.Fatalf("reply %+v", e)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("closed after %v, before the idle time", d)
	}
	expectEOF(t, r)
}

// TestConnectionCap: beyond MaxConns, connections are accepted, told, and
// closed; the others keep working.
func TestConnectionCap(t *testing.T) {
	s := newServer(t, Limits{MaxConns: 5, Idle: 10 * time.Second, MaxOutput: 1 << 20})
	held := make([]*net.UnixConn, 5)
	for i := range held {
		held[i] = s.dial()
	}
	s.waitConns(5)
	extra := s.dial()
	if e := readEvent(t, bufio.NewReader(extra)); e.Kind != event.Error || !strings.Contains(e.Err, "busy") {
		t.Fatalf("reply beyond the cap: %+v", e)
	}
	io.WriteString(held[0], "ping\n")
	if e := readEvent(t, bufio.NewReader(held[0])); e.Kind != event.Pong {
		t.Fatalf("held connection: %+v", e)
	}
}

// TestSlowReader: a subscriber that never reads is dropped when its output
// passes MaxOutput; it cannot make the server buffer without bound.
func TestSlowReader(t *testing.T) {
	s := newServer(t, Limits{MaxConns: 8, Idle: 10 * time.Second, MaxOutput: 64 << 10})
	c := s.dial()
	io.WriteString(c, "shutdown\n")
	for deadline := time.Now().Add(5 * time.Second); s.conns() == 1; {
		s.on(func() {
			for range 1000 {
				s.srv.Broadcast(event.Event{Kind: event.Log, Mono: 1, Msg: strings.Repeat("x", 200)})
			}
		})
		if time.Now().After(deadline) {
			t.Fatal("a subscriber that does not read was never dropped")
		}
	}
}

// TestShutdownStream: accepted comes first, then the events; after the
// reboot event, Finish waits for the host's EOF.
func TestShutdownStream(t *testing.T) {
	for _, hostHalfClosesEarly := range []bool{false, true} {
		name := map[bool]string{false: "host reads then closes", true: "host half-closes after the request"}[hostHalfClosesEarly]
		t.Run(name, func(t *testing.T) {
			s := newServer(t, DefaultLimits)
			c := s.dial()
			r := bufio.NewReader(c)
			io.WriteString(c, "shutdown grace=3s\n")
			if hostHalfClosesEarly {
				c.CloseWrite()
			}
			if e := readEvent(t, r); e.Kind != event.Accepted || e.Grace != 3*time.Second {
				t.Fatalf("first reply %+v", e)
			}
			if e := readEvent(t, r); e.Kind != event.Trigger {
				t.Fatalf("then %+v", e)
			}
			// A second request joins: it gets accepted, no new start.
			c2 := s.dial()
			r2 := bufio.NewReader(c2)
			io.WriteString(c2, "shutdown\n")
			if e := readEvent(t, r2); e.Kind != event.Accepted || e.Phase != "terminating" {
				t.Fatalf("second request: %+v", e)
			}
			if n := s.started(); n != 1 {
				t.Fatalf("started %d shutdowns", n)
			}
			finished := make(chan struct{})
			s.on(func() {
				s.srv.Broadcast(event.Event{Kind: event.Reboot, Mono: event.Now(), Command: "poweroff"})
				s.srv.Finish(func() { close(finished) })
			})
			for _, rr := range []*bufio.Reader{r, r2} {
				if e := readEvent(t, rr); e.Kind != event.Reboot {
					t.Fatalf("last event %+v", e)
				}
			}
			if !hostHalfClosesEarly {
				select {
				case <-finished:
					t.Fatal("Finish did not wait for the host to read the end")
				case <-time.After(100 * time.Millisecond):
				}
				c.CloseWrite()
			}
			c2.Close()
			select {
			case <-finished:
			case <-time.After(5 * time.Second):
				t.Fatal("Finish never done after the hosts closed")
			}
			if _, err := os.Stat(s.path); !os.IsNotExist(err) {
				t.Errorf("socket file left after Finish: %v", err)
			}
		})
	}
}

// TestHostile: random bytes, hundreds of connections at once and stallers do
// not stop the server from answering a good client at once, and leave no
// connection behind.
func TestHostile(t *testing.T) {
	s := newServer(t, Limits{MaxConns: 64, Idle: 300 * time.Millisecond, MaxOutput: 1 << 20})
	for range 20 { // stallers: s.dial's cleanup closes them
		io.WriteString(s.dial(), "shutdown gra")
	}
	var wg sync.WaitGroup
	for i := range 500 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("unix", s.path)
			if err != nil {
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			b := make([]byte, 1+i%300)
			for j := range b {
				b[j] = byte(j*7 + i*13)
			}
			c.Write(b)
			io.Copy(io.Discard, c)
		}()
	}
	start := time.Now()
	good := s.dial()
	io.WriteString(good, "ping\n")
	if e := readEvent(t, bufio.NewReader(good)); e.Kind != event.Pong && !(e.Kind == event.Error && strings.Contains(e.Err, "busy")) {
		t.Fatalf("good client: %+v", e)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("good client answered after %v", d)
	}
	wg.Wait()
	good.Close()
	s.waitConns(0) // the stallers timed out, everything else closed
	if s.started() != 0 {
		t.Error("hostile input started a shutdown")
	}
}
