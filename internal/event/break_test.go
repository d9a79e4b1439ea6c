package event

// Regression tests for defects found by trying to break the event encodings (the break
// branch): each test names the defect it guards against.

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBreakTextSurvivorNewline: the human-readable line quotes a comm with a
// newline in reaped events, but not inside the survivors list of
// grace_expired: a process that names itself "x\n[ 9.9] vminit: reboot"
// (prctl(PR_SET_NAME), 15 bytes) splits the console line and forges one.
// Survivors come from /proc/PID/stat, where comm is raw.
func TestBreakTextSurvivorNewline(t *testing.T) {
	e := Event{Kind: GraceExpired, Mono: 1, Survivors: []Proc{{PID: 7, Comm: "x\n[9] vminit: r"}}}
	line := e.AppendText(nil)
	if n := bytes.Count(line, []byte("\n")); n != 1 {
		t.Errorf("one event became %d console lines:\n%s", n, line)
	}
}

// stallingWriter blocks every Write until release is closed.
type stallingWriter struct {
	release chan struct{}
	mu      sync.Mutex
	out     bytes.Buffer
}

func (b *stallingWriter) Write(p []byte) (int, error) {
	<-b.release
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.Write(p)
}

// TestBreakDroppedNoticeIsNotJSON: docs/events.md promises JSON lines on the
// report pipe and with vminit.json=true, one event per line. When the
// Writer's buffer overflows it inserts "vminit: log: N lines dropped (output
// too slow)", which is not JSON: a consumer that decodes every line (the
// benchmark, a host agent) meets a line outside the schema exactly when the
// output was too slow, and the drop count is not an event it can read.
func TestBreakDroppedNoticeIsNotJSON(t *testing.T) {
	dst := &stallingWriter{release: make(chan struct{})}
	w := NewWriter(dst, 600)
	s := NewSink(w, true, 0)
	for i := 0; i < 50; i++ {
		s.Emit(Event{Kind: Reaped, Mono: int64(i + 1), PID: i + 2, Comm: "worker"})
	}
	close(dst.release)
	done := make(chan struct{})
	time.Sleep(50 * time.Millisecond)
	s.Emit(Event{Kind: Reboot, Mono: 999, Command: "poweroff"})
	w.Flush(func() { close(done) })
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("flush did not complete")
	}
	dst.mu.Lock()
	defer dst.mu.Unlock()
	for _, l := range strings.Split(strings.TrimSpace(dst.out.String()), "\n") {
		if !json.Valid([]byte(l)) {
			t.Errorf("line outside the JSON schema: %q", l)
		}
	}
}
