package shutdown

import (
	"fmt"
	"strconv"
	"strings"
)

// pfKthread is PF_KTHREAD in the flags field of /proc/PID/stat.
const pfKthread = 0x00200000

// stat holds the fields of /proc/PID/stat that the sequence needs.
type stat struct {
	pid      int
	comm     string
	state    byte
	ppid     int
	kthread  bool
	exitCode int // a zombie's wait status (Linux 3.5), -1 if absent
}

// parseStat parses /proc/PID/stat (proc(5)). The command name is in
// parentheses and may itself contain spaces and parentheses, so it runs to
// the last ')'.
func parseStat(s string) (stat, error) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 1 || end < open {
		return stat{}, fmt.Errorf("malformed stat %q", s)
	}
	var st stat
	var err error
	if st.pid, err = strconv.Atoi(strings.TrimSpace(s[:open])); err != nil {
		return stat{}, fmt.Errorf("malformed stat %q", s)
	}
	st.comm = s[open+1 : end]
	// Fields after the name: state ppid pgrp session tty_nr tpgid flags ...
	f := strings.Fields(s[end+1:])
	if len(f) < 7 || len(f[0]) != 1 {
		return stat{}, fmt.Errorf("malformed stat %q", s)
	}
	st.state = f[0][0]
	if st.ppid, err = strconv.Atoi(f[1]); err != nil {
		return stat{}, fmt.Errorf("malformed stat %q", s)
	}
	flags, err := strconv.ParseUint(f[6], 10, 64)
	if err != nil {
		return stat{}, fmt.Errorf("malformed stat %q", s)
	}
	st.kthread = flags&pfKthread != 0
	st.exitCode = -1
	// exit_code is field 52; f holds the fields from 3 on.
	if len(f) >= 50 {
		if n, err := strconv.Atoi(f[49]); err == nil {
			st.exitCode = n
		}
	}
	return st, nil
}

// sigkill is SIGKILL's number, the same on every Linux architecture.
const sigkill = 9

// survived reports whether a process counts as a survivor of the grace: it
// is still running, or it is a zombie that SIGKILL ended (zombies that exited
// on their own, waiting for a parent that does not wait, do not count).
func (st stat) survived() bool {
	if st.state != 'Z' {
		return true
	}
	return st.exitCode >= 0 && st.exitCode&0x7f == sigkill
}
