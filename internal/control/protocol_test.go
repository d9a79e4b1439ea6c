package control

import (
	"strings"
	"testing"
	"time"

	"github.com/vminit/vminit/shutdown"
)

func TestParseRequest(t *testing.T) {
	for in, want := range map[string]Request{
		"ping\n":                          {Verb: Ping},
		"status\r\n":                      {Verb: Status},
		"shutdown":                        {Verb: Shutdown},
		"  shutdown   grace=1.5s \n":      {Verb: Shutdown, Grace: 1500 * time.Millisecond, HasGrace: true},
		"shutdown final=restart grace=0s": {Verb: Shutdown, Final: shutdown.Restart, HasFinal: true, HasGrace: true},
		"shutdown\tfinal=halt":            {Verb: Shutdown, Final: shutdown.Halt, HasFinal: true},
	} {
		got, err := ParseRequest([]byte(in))
		if err != nil || got != want {
			t.Errorf("ParseRequest(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{
		"PING", "ping now", "reboot", "shutdown grace", "shutdown grace=abc", "shutdown grace=-1s",
		"shutdown final=off", "shutdown grace=1s grace=2s", "shutdown color=red", "shut\x00down",
		"\xff\xfe", "status\x1b[2J", strings.Repeat("x", MaxLine),
	} {
		if r, err := ParseRequest([]byte(in)); err == nil {
			t.Errorf("ParseRequest(%q) = %+v, want an error", in, r)
		}
	}
	if _, err := ParseRequest([]byte(" \n")); err != ErrEmpty {
		t.Errorf("blank line: %v, want ErrEmpty", err)
	}
}

func TestRequestString(t *testing.T) {
	r := Request{Verb: Shutdown, Grace: 2 * time.Second, HasGrace: true, Final: shutdown.Halt, HasFinal: true}
	if got, err := ParseRequest([]byte(r.String())); err != nil || got != r {
		t.Errorf("round trip of %q: %+v, %v", r.String(), got, err)
	}
}

// FuzzParseRequest: any bytes give a request or an error, never a panic, and
// a request renders to a line that parses back to itself.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{"ping\n", "status", "shutdown grace=5s final=restart\n", "shutdown grace=", "\xff", "shutdown final=poweroff grace=1h2m3.5s"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b)
		if err != nil {
			if len(err.Error()) > 200 {
				t.Fatalf("error too long to send back: %d bytes", len(err.Error()))
			}
			return
		}
		again, err := ParseRequest([]byte(r.String()))
		if err != nil || again != r {
			t.Fatalf("%q parsed to %+v, rendered %q, parsed back to %+v, %v", b, r, r.String(), again, err)
		}
	})
}
