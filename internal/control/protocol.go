package control

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vminit/vminit/shutdown"
)

// MaxLine is the longest request line, newline included.
const MaxLine = 4096

// Verb is what a request asks.
type Verb string

// The verbs.
const (
	Ping     Verb = "ping"
	Status   Verb = "status"
	Shutdown Verb = "shutdown"
)

// Request is one parsed request line.
type Request struct {
	Verb Verb
	// Grace, if set, bounds the grace of a shutdown (it may shorten the
	// one in force, never lengthen it).
	Grace    time.Duration
	HasGrace bool
	// Final, if set, is the reboot(2) command of a shutdown.
	Final    shutdown.Final
	HasFinal bool
	// From names the client (set by the server, not part of the line).
	From string
}

// String renders the request as a line (without the newline).
func (r Request) String() string {
	s := string(r.Verb)
	if r.HasGrace {
		s += " grace=" + r.Grace.String()
	}
	if r.HasFinal {
		s += " final=" + r.Final.String()
	}
	return s
}

// ErrEmpty is returned for a blank line, which a server ignores.
var ErrEmpty = errors.New("empty line")

// ParseRequest parses one request line, with or without its "\n" (a "\r\n"
// ending is accepted too):
//
//	ping
//	status
//	shutdown [grace=DURATION] [final=poweroff|restart|halt]
func ParseRequest(line []byte) (Request, error) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) >= MaxLine {
		return Request{}, fmt.Errorf("request longer than %d bytes", MaxLine-1)
	}
	if !utf8.Valid(line) {
		return Request{}, errors.New("request is not valid UTF-8")
	}
	for _, c := range line {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return Request{}, fmt.Errorf("request has a control character (%#02x)", c)
		}
	}
	f := strings.Fields(string(line))
	if len(f) == 0 {
		return Request{}, ErrEmpty
	}
	r := Request{Verb: Verb(f[0])}
	switch r.Verb {
	case Ping, Status:
		if len(f) > 1 {
			return Request{}, fmt.Errorf("%s takes no arguments", r.Verb)
		}
		return r, nil
	case Shutdown:
	default:
		return Request{}, fmt.Errorf("unknown request %q (want ping, status or shutdown)", clip(f[0]))
	}
	for _, arg := range f[1:] {
		key, val, ok := strings.Cut(arg, "=")
		switch {
		case !ok:
			return Request{}, fmt.Errorf("shutdown: argument %q is not key=value", clip(arg))
		case key == "grace" && !r.HasGrace:
			d, err := time.ParseDuration(val)
			if err != nil || d < 0 {
				return Request{}, fmt.Errorf("shutdown: grace=%s: want a duration such as 5s", clip(val))
			}
			r.Grace, r.HasGrace = d, true
		case key == "final" && !r.HasFinal:
			fin, err := shutdown.ParseFinal(val)
			if err != nil {
				return Request{}, fmt.Errorf("shutdown: %v", err)
			}
			r.Final, r.HasFinal = fin, true
		case key == "grace" || key == "final":
			return Request{}, fmt.Errorf("shutdown: %s given twice", key)
		default:
			return Request{}, fmt.Errorf("shutdown: unknown argument %q (want grace= or final=)", clip(key))
		}
	}
	return r, nil
}

// clip shortens what a client sent before it is quoted back.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
