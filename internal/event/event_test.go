package event

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// TestJSONRoundTrip: what AppendJSON writes, encoding/json reads back into the
// same Event: one schema for writers and readers.
func TestJSONRoundTrip(t *testing.T) {
	for _, e := range []Event{
		{Kind: Ready, Mono: 1, Mode: "vm"},
		{Kind: WorkloadStart, Mono: 2, PID: 7, Comm: "app", Argv: []string{"/bin/app", "a b", `q"uote`}},
		{Kind: Reaped, Mono: 3, PID: 8, Comm: "sleep", Status: 0},
		{Kind: Reaped, Mono: 3, PID: 9, Comm: "x", Status: 137, Signal: "SIGKILL"},
		{Kind: SigTerm, Mono: 4, Grace: 10 * time.Second},
		{Kind: GraceExpired, Mono: 5, Survivors: []Proc{{PID: 3, Comm: "stubborn"}}},
		{Kind: GraceExpired, Mono: 5, Survivors: []Proc{}},
		{Kind: Remount, Mono: 6, Mount: "/data", FSType: "ext4", ReadOnly: true},
		{Kind: Reboot, Mono: 7, Command: "poweroff", Err: "sync: timed out"},
		{Kind: Log, Mono: 8, Level: "WARN", Msg: "héllo\nworld\t<&>", Err: "bad"},
		{Kind: State, Mono: 9, Uptime: 3 * time.Second, Procs: 0, Workload: "exited", Status: 0, Phase: "running"},
		{Kind: State, Mono: 9, Uptime: 3 * time.Second, Procs: 4, Workload: "running", PID: 2, Phase: "running"},
		{Kind: Accepted, Mono: 10, Grace: time.Second, Command: "restart", Phase: "terminating"},
		{Kind: Pong, Mono: 11},
	} {
		b := e.AppendJSON(nil)
		if !json.Valid(b) || b[len(b)-1] != '\n' {
			t.Fatalf("invalid JSON line %q", b)
		}
		var got Event
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("round trip of %s\n got %+v\nwant %+v\nline %s", e.Kind, got, e, b)
		}
	}
}

func TestStatusAlwaysPresent(t *testing.T) {
	e := Event{Kind: WorkloadExit, Status: 0}
	if !bytes.Contains(e.AppendJSON(nil), []byte(`"status":0`)) {
		t.Error("workload_exit without status")
	}
	e = Event{Kind: Sync, Step: "start"}
	if bytes.Contains(e.AppendJSON(nil), []byte(`"status"`)) {
		t.Error("sync with a status")
	}
}

// FuzzJSONString: whatever a process calls itself, the line is valid JSON
// and decodes to the name (invalid UTF-8 as U+FFFD).
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "a\"b\\c", "\x00\x1f\x7f", "\xff\xfe", "\u2028\u2029", "日本語", "<script>&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q encoded as %s: %v", s, b, err)
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); utf8.ValidString(s) && got != s || !utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("%q decoded as %q (want %q)", s, got, want)
		}
	})
}

func TestText(t *testing.T) {
	for _, tc := range []struct {
		e    Event
		want string
	}{
		{Event{Kind: SigTerm, Mono: 4000100000, Grace: 10 * time.Second}, "[    4.000100] vminit: sigterm grace=10s\n"},
		{Event{Kind: Reaped, Mono: 12345678901234, PID: 5, Comm: "worker 1", Status: 0}, `[12345.678901] vminit: reaped pid=5 comm="worker 1" status=0` + "\n"},
		{Event{Kind: GraceExpired, Mono: 1, Survivors: []Proc{{1, "a"}, {2, "b"}}}, "[    0.000000] vminit: grace_expired survivors=1(a),2(b)\n"},
		{Event{Kind: SigKill, Mono: 1}, "[    0.000000] vminit: sigkill\n"},
		{Event{Kind: Log, Mono: 1, Level: "INFO", Msg: "mounted proc"}, "[    0.000000] vminit: mounted proc\n"},
		{Event{Kind: Log, Mono: 1, Level: "WARN", Msg: "configuration", Err: "bad"}, "[    0.000000] vminit: WARN: configuration error=bad\n"},
	} {
		if got := string(tc.e.AppendText(nil)); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}

func TestClock(t *testing.T) {
	now := Now()
	if now <= 0 || Mono(Time(now)) != now {
		t.Fatalf("Now %d, round trip %d", now, Mono(Time(now)))
	}
	if d := Now() - now; d < 0 || d > int64(time.Second) {
		t.Fatalf("clock went %v", time.Duration(d))
	}
}

func TestSlogHandler(t *testing.T) {
	var buf bytes.Buffer
	s := NewSink(&buf, true, slog.LevelInfo)
	log := slog.New(s.Handler())
	log.Debug("dropped")
	log.With("phase", "boot").Warn("configuration", "err", "bad value", "pid", 3, "key", "vminit.grace")
	var e Event
	if err := json.Unmarshal(buf.Bytes(), &e); err != nil {
		t.Fatalf("%q: %v", buf.String(), err)
	}
	if e.Kind != Log || e.Level != "WARN" || e.Err != "bad value" || e.PID != 3 || e.Msg != "configuration phase=boot key=vminit.grace" || e.Mono == 0 {
		t.Errorf("event %+v", e)
	}
}

// TestWriterNeverBlocks: a stuck destination never blocks Write; what does
// not fit is dropped and counted; Flush reports once everything is out.
func TestWriterNeverBlocks(t *testing.T) {
	dst := &stallingWriter{release: make(chan struct{})} // break_test.go
	w := NewWriter(dst, 100)
	done := make(chan struct{})
	go func() {
		for i := 0; i < 1000; i++ {
			w.Write([]byte("0123456789\n"))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Write blocked on a stuck destination")
	}
	flushed := make(chan struct{})
	w.Flush(func() { close(flushed) })
	close(dst.release)
	select {
	case <-flushed:
	case <-time.After(5 * time.Second):
		t.Fatal("Flush never reported")
	}
	w.Write([]byte("after\n"))
	flushed = make(chan struct{})
	w.Flush(func() { close(flushed) })
	<-flushed
	dst.mu.Lock()
	out := dst.out.String()
	dst.mu.Unlock()
	if !strings.Contains(out, "lines dropped: the output was too slow") || !strings.HasSuffix(out, "after\n") {
		t.Errorf("output %q: want a drop notice and the last line", out)
	}
}

func TestWriterKeepsOrder(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, 1<<20)
	var want strings.Builder
	for i := 0; i < 500; i++ {
		line := strings.Repeat("x", i%17) + "\n"
		w.Write([]byte(line))
		want.WriteString(line)
	}
	flushed := make(chan struct{})
	w.Flush(func() { close(flushed) })
	<-flushed
	if buf.String() != want.String() {
		t.Error("lines reordered or lost")
	}
}

func TestTimeline(t *testing.T) {
	ms := int64(time.Millisecond)
	var tl Timeline
	for _, e := range []Event{
		{Kind: Ready, Mono: 1 * ms},
		{Kind: Reaped, Mono: 2 * ms, PID: 9}, // before the trigger: not counted
		{Kind: Trigger, Mono: 100 * ms, Source: "SIGTERM"},
		{Kind: SigTerm, Mono: 101 * ms},
		{Kind: Reaped, Mono: 110 * ms, PID: 2},
		{Kind: GraceExpired, Mono: 1101 * ms, Survivors: []Proc{{3, "stubborn"}}},
		{Kind: SigKill, Mono: 1102 * ms},
		{Kind: Reaped, Mono: 1103 * ms, PID: 3, Status: 137},
		{Kind: WorkloadExit, Mono: 1103 * ms, Status: 137},
		{Kind: Sync, Mono: 1104 * ms, Step: "start"},
		{Kind: Sync, Mono: 1110 * ms, Step: "end"},
		{Kind: Remount, Mono: 1111 * ms, Err: "EPERM", Level: "INFO"},
		{Kind: Reboot, Mono: 1112 * ms, Command: "poweroff"},
	} {
		tl.Add(e)
	}
	if !tl.Done() || tl.Graceful() || tl.Reaped != 2 || tl.Total() != 1012*time.Millisecond || tl.WorkloadStatus != 137 || len(tl.Errors) != 0 {
		t.Errorf("timeline %+v", tl)
	}
	var b strings.Builder
	tl.WriteSummary(&b)
	for _, want := range []string{"SIGKILLed at the grace: 3(stubborn)", "wait for exits (grace expired)", "1s", "total: trigger → reboot(poweroff)", "1.012s"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
}

// TestWriterHold: held lines go out together, at Release.
func TestWriterHold(t *testing.T) {
	dst := &countingWriter{}
	w := NewWriter(dst, 1<<20)
	w.Hold()
	for range 100 {
		w.Write([]byte("line\n"))
	}
	time.Sleep(20 * time.Millisecond)
	if n := dst.writes(); n != 0 {
		t.Fatalf("%d writes while held", n)
	}
	w.Release()
	flushed := make(chan struct{})
	w.Flush(func() { close(flushed) })
	<-flushed
	if n, b := dst.writes(), dst.bytes(); n != 1 || b != 500 {
		t.Errorf("%d writes of %d bytes after Release, want 1 of 500", n, b)
	}
}

type countingWriter struct {
	mu   sync.Mutex
	n, b int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	c.b += len(p)
	return len(p), nil
}

func (c *countingWriter) writes() int { c.mu.Lock(); defer c.mu.Unlock(); return c.n }
func (c *countingWriter) bytes() int  { c.mu.Lock(); defer c.mu.Unlock(); return c.b }
