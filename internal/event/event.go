package event

import (
	"fmt"
	"strings"
	"time"
)

// Kind names what happened.
type Kind string

// The kinds of events. docs/events.md lists the fields each one carries.
const (
	Ready         Kind = "ready"          // signal handling armed; Mode
	WorkloadStart Kind = "workload_start" // PID, Comm, Argv
	Trigger       Kind = "trigger"        // a shutdown was requested; Source
	SigTerm       Kind = "sigterm"        // SIGTERM and SIGCONT sent to all; Grace
	Reaped        Kind = "reaped"         // PID, Comm, Status, Signal
	GraceExpired  Kind = "grace_expired"  // Survivors
	SigKill       Kind = "sigkill"        // SIGKILL sent to all
	Sync          Kind = "sync"           // Step (start, end, timeout), Err
	Remount       Kind = "remount"        // Mount, FSType, ReadOnly, Err
	WorkloadExit  Kind = "workload_exit"  // PID, Status, Signal
	Reboot        Kind = "reboot"         // Command, Err (failed steps)
	Error         Kind = "error"          // Step, Err
	Log           Kind = "log"            // Level, Msg, Err: anything else

	// Replies of the control protocol.
	Pong     Kind = "pong"     // to ping
	State    Kind = "status"   // to status: Uptime, Procs, Workload, PID, Status, Phase
	Accepted Kind = "accepted" // to shutdown, before any signal: Grace, Command, Phase
)

// Proc names a process.
type Proc struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
}

// String renders the process as PID(comm), with a comm that could be mistaken
// for something else (spaces, quotes, control characters) quoted: a process
// names itself, and must not be able to forge a log line.
func (p Proc) String() string { return fmt.Sprintf("%d(%s)", p.PID, quoteIfNeeded(p.Comm)) }

// Event is one thing vminit did or saw. Zero fields are left out of the
// encodings, except Status, which reaped and workload_exit always carry.
type Event struct {
	Kind      Kind          `json:"event"`
	Mono      int64         `json:"mono_ns"` // CLOCK_MONOTONIC
	Level     string        `json:"level,omitempty"`
	Msg       string        `json:"msg,omitempty"`
	Mode      string        `json:"mode,omitempty"`
	Source    string        `json:"source,omitempty"`
	PID       int           `json:"pid,omitempty"`
	Comm      string        `json:"comm,omitempty"`
	Argv      []string      `json:"argv,omitempty"`
	Status    int           `json:"status"`
	Signal    string        `json:"signal,omitempty"`
	Grace     time.Duration `json:"grace_ns,omitempty"`
	Survivors []Proc        `json:"survivors,omitempty"`
	Step      string        `json:"step,omitempty"`
	Mount     string        `json:"mount,omitempty"`
	FSType    string        `json:"fstype,omitempty"`
	ReadOnly  bool          `json:"ro,omitempty"`
	Command   string        `json:"command,omitempty"`
	Uptime    time.Duration `json:"uptime_ns,omitempty"`
	Procs     int           `json:"procs,omitempty"`
	Workload  string        `json:"workload,omitempty"` // none, running, exited
	Phase     string        `json:"phase,omitempty"`
	Err       string        `json:"error,omitempty"`
}

// hasStatus reports whether the event always carries a status: a process
// ended.
func (e *Event) hasStatus() bool {
	return e.Kind == Reaped || e.Kind == WorkloadExit || e.Kind == State && e.Workload == "exited"
}

// A field is one encoded key and value.
type field struct {
	key string
	val any // string, int, int64, bool, []string or []Proc
}

// fields lists the event's fields in encoding order, zero ones left out.
func (e *Event) fields() []field {
	f := make([]field, 0, 8)
	add := func(k string, v any, set bool) {
		if set {
			f = append(f, field{k, v})
		}
	}
	add("msg", e.Msg, e.Msg != "")
	add("mode", e.Mode, e.Mode != "")
	add("source", e.Source, e.Source != "")
	add("pid", e.PID, e.PID != 0)
	add("comm", e.Comm, e.Comm != "")
	add("argv", e.Argv, len(e.Argv) > 0)
	add("status", e.Status, e.hasStatus() || e.Status != 0)
	add("signal", e.Signal, e.Signal != "")
	add("grace_ns", int64(e.Grace), e.Grace != 0)
	add("survivors", e.Survivors, e.Survivors != nil)
	add("step", e.Step, e.Step != "")
	add("mount", e.Mount, e.Mount != "")
	add("fstype", e.FSType, e.FSType != "")
	add("ro", e.ReadOnly, e.ReadOnly)
	add("command", e.Command, e.Command != "")
	add("uptime_ns", int64(e.Uptime), e.Uptime != 0)
	add("procs", e.Procs, e.Kind == State)
	add("workload", e.Workload, e.Workload != "")
	add("phase", e.Phase, e.Phase != "")
	add("error", e.Err, e.Err != "")
	return f
}

// String renders the event's fields (not its kind or time) as key=value
// pairs, the way the human-readable log shows them; a log line's message
// comes first, as it is.
func (e Event) String() string {
	var b strings.Builder
	if e.Kind == Log && e.Msg != "" {
		b.WriteString(e.Msg)
		e.Msg = ""
	}
	for _, f := range e.fields() {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		if k, ok := strings.CutSuffix(f.key, "_ns"); ok {
			b.WriteString(k + "=")
		} else {
			b.WriteString(f.key)
			b.WriteByte('=')
		}
		b.WriteString(textValue(f))
	}
	return b.String()
}

func textValue(f field) string {
	switch v := f.val.(type) {
	case string:
		return quoteIfNeeded(v)
	case []string:
		return quoteIfNeeded(strings.Join(v, " "))
	case []Proc:
		if len(v) == 0 {
			return "none"
		}
		s := make([]string, len(v))
		for i, p := range v {
			s[i] = p.String()
		}
		return strings.Join(s, ",")
	case int64:
		if strings.HasSuffix(f.key, "_ns") {
			return time.Duration(v).String()
		}
		return fmt.Sprint(v)
	default:
		return fmt.Sprint(v)
	}
}

func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n\"=\\(),") || !isPrint(s) {
		return fmt.Sprintf("%q", s)
	}
	return s
}

func isPrint(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return false
		}
	}
	return true
}
