package main

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vminit/vminit/internal/event"
)

// consoleLine is one line of a VM's serial console.
type consoleLine struct {
	at   time.Duration // when the host read it, from QEMU's start
	text string
	ev   *event.Event // vminit's event on this line, if it is one
}

// kinds are the event kinds, for telling an event's line from a log line.
var kinds = map[event.Kind]bool{
	event.Ready: true, event.WorkloadStart: true, event.Trigger: true, event.SigTerm: true,
	event.Reaped: true, event.GraceExpired: true, event.SigKill: true, event.Sync: true,
	event.Remount: true, event.WorkloadExit: true, event.Reboot: true, event.Error: true,
}

var textLineRE = regexp.MustCompile(`^\[\s*(\d+)\.(\d{6})\] vminit: (.*)$`)

// parseEvent reads vminit's event from a console line: a JSON line
// (vminit.json=true) or a human-readable one ("[    4.000100] vminit:
// sigterm grace=10s"). Kernel output and workload output give nil.
func parseEvent(line string) *event.Event {
	if i := strings.Index(line, `{"event":`); i >= 0 {
		var e event.Event
		if json.Unmarshal([]byte(line[i:]), &e) == nil && e.Kind != "" {
			return &e
		}
		return nil
	}
	m := textLineRE.FindStringSubmatch(line)
	if m == nil {
		return nil
	}
	sec, _ := strconv.ParseInt(m[1], 10, 64)
	usec, _ := strconv.ParseInt(m[2], 10, 64)
	e := &event.Event{Mono: sec*1e9 + usec*1e3}
	rest := m[3]
	word, fields, _ := strings.Cut(rest, " ")
	if !kinds[event.Kind(word)] {
		e.Kind = event.Log
		e.Level = "INFO"
		for _, l := range []string{"DEBUG", "WARN", "ERROR"} {
			if after, ok := strings.CutPrefix(rest, l+": "); ok {
				e.Level, rest = l, after
			}
		}
		e.Msg = rest
		return e
	}
	e.Kind = event.Kind(word)
	for _, kv := range splitFields(fields) {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(v, `"`) {
			if u, err := strconv.Unquote(v); err == nil {
				v = u
			}
		}
		setField(e, k, v)
	}
	return e
}

// splitFields splits key=value pairs at spaces outside double quotes (values
// with spaces are Go-quoted).
func splitFields(s string) []string {
	var out []string
	var b strings.Builder
	quoted, escaped := false, false
	for _, r := range s {
		switch {
		case escaped:
			escaped = false
		case quoted && r == '\\':
			escaped = true
		case r == '"':
			quoted = !quoted
		case r == ' ' && !quoted:
			if b.Len() > 0 {
				out = append(out, b.String())
				b.Reset()
			}
			continue
		}
		b.WriteRune(r)
	}
	if b.Len() > 0 {
		out = append(out, b.String())
	}
	return out
}

func setField(e *event.Event, k, v string) {
	atoi := func() int { n, _ := strconv.Atoi(v); return n }
	switch k {
	case "mode":
		e.Mode = v
	case "source":
		e.Source = v
	case "pid":
		e.PID = atoi()
	case "comm":
		e.Comm = v
	case "argv":
		e.Argv = strings.Fields(v)
	case "status":
		e.Status = atoi()
	case "signal":
		e.Signal = v
	case "grace":
		d, _ := time.ParseDuration(v)
		e.Grace = d
	case "survivors":
		e.Survivors = []event.Proc{}
		if v == "none" {
			return
		}
		for _, p := range strings.Split(v, ",") {
			pid, comm, _ := strings.Cut(p, "(")
			n, _ := strconv.Atoi(pid)
			e.Survivors = append(e.Survivors, event.Proc{PID: n, Comm: strings.TrimSuffix(comm, ")")})
		}
	case "step":
		e.Step = v
	case "mount":
		e.Mount = v
	case "fstype":
		e.FSType = v
	case "ro":
		e.ReadOnly = v == "true"
	case "command":
		e.Command = v
	case "error":
		e.Err = v
	}
}
