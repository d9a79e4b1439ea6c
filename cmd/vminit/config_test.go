package main

import (
	"strings"
	"testing"
	"time"

	"github.com/vminit/vminit/shutdown"
)

func TestSplitCmdline(t *testing.T) {
	for in, want := range map[string]string{
		"console=ttyS0 vminit.grace=5s\n":     "console=ttyS0|vminit.grace=5s",
		`a "b c" d`:                           "a|b c|d",
		`vminit.env="GREETING=hello world" x`: "vminit.env=GREETING=hello world|x",
		"a -- vminit.grace=1s":                "a",
		"  spaced\tout  ":                     "spaced|out",
		`unterminated "quote here`:            "unterminated|quote here",
		"":                                    "",
		"vminit.json vminit.final=halt -- /bin/app --flag": "vminit.json|vminit.final=halt",
	} {
		params, _ := splitCmdline(in)
		if got := strings.Join(params, "|"); got != want {
			t.Errorf("splitCmdline(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestApplyCmdline(t *testing.T) {
	c := defaultConfig()
	w := c.applyCmdline(`console=ttyS0 vminit.grace=3s vminit.final=restart vminit.shutdown_on_exit=no vminit.env=A=1 vminit.env="B=two words" vminit.json quiet`)
	if len(w) != 0 {
		t.Fatalf("warnings: %v", w)
	}
	if c.shutdown.Grace != 3*time.Second || c.shutdown.Final != shutdown.Restart || c.shutdownOnExit || !c.json {
		t.Errorf("config %+v", c)
	}
	if strings.Join(c.env, "|") != "A=1|B=two words" {
		t.Errorf("env %q", c.env)
	}
}

// TestBadCmdline: every bad key or value is reported, and the setting keeps
// its default.
func TestBadCmdline(t *testing.T) {
	c := defaultConfig()
	w := c.applyCmdline("vminit.grace=abc vminit.bogus=1 vminit.final=off vminit.kill_timeout=-1s vminit.env=novalue vminit.report_fd=3")
	if len(w) != 6 {
		t.Fatalf("%d warnings, want 6: %v", len(w), w)
	}
	for i, key := range []string{"vminit.grace=abc", "vminit.bogus", "vminit.final=off", "vminit.kill_timeout=-1s", "vminit.env=novalue", "vminit.report_fd"} {
		if !strings.Contains(w[i].Error(), key) {
			t.Errorf("warning %q does not name %s", w[i], key)
		}
	}
	d := defaultConfig()
	if c.shutdown.Grace != d.shutdown.Grace || c.shutdown.Final != d.shutdown.Final || c.shutdown.KillTimeout != d.shutdown.KillTimeout || len(c.env) != 0 {
		t.Errorf("defaults changed: %+v", c.shutdown)
	}
}

func TestApplyArgs(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		strict  bool
		command string
		grace   time.Duration
		warn    int
		err     bool
	}{
		{args: []string{"--grace", "2s", "--", "/bin/app", "-x"}, command: "/bin/app|-x", grace: 2 * time.Second},
		{args: []string{"--grace=2s", "/bin/app", "--grace=9s"}, command: "/bin/app|--grace=9s", grace: 2 * time.Second},
		{args: []string{"-json", "/bin/app"}, command: "/bin/app", grace: 10 * time.Second},
		{args: []string{"--bogus", "--grace=1s", "--", "app"}, command: "app", grace: time.Second, warn: 1},
		{args: []string{"--grace=abc", "--", "app"}, command: "app", grace: 10 * time.Second, warn: 1},
		{args: []string{"--grace"}, grace: 10 * time.Second, warn: 1},
		{args: []string{"--bogus", "--", "app"}, strict: true, err: true},
		{args: []string{"--shutdown-on-exit", "false", "--", "app"}, strict: true, err: true},
		{args: []string{"--shutdown-on-exit=false", "--", "app"}, strict: true, command: "app", grace: 10 * time.Second},
		{args: []string{"--shutdown-after=1s"}, grace: 10 * time.Second, warn: 1}, // a sandbox flag, not PID 1's
		{args: nil, grace: 10 * time.Second},
	} {
		c := defaultConfig()
		_, w, err := c.applyArgs(tc.args, onInit, tc.strict)
		if (err != nil) != tc.err || len(w) != tc.warn {
			t.Errorf("%q: err %v, warnings %v", tc.args, err, w)
			continue
		}
		if tc.err {
			continue
		}
		if got := strings.Join(c.command, "|"); got != tc.command || c.shutdown.Grace != tc.grace {
			t.Errorf("%q: command %q grace %v, want %q %v", tc.args, got, c.shutdown.Grace, tc.command, tc.grace)
		}
	}
}

// TestUsageListsEverySetting keeps --help and the README's reference in
// step with the settings table.
func TestUsageListsEverySetting(t *testing.T) {
	u := usage(onInit) + usage(onSandbox)
	for _, s := range settings {
		if !strings.Contains(u, "--"+s.name) {
			t.Errorf("usage does not list --%s", s.name)
		}
		if s.where&onCmdline != 0 && !strings.Contains(u, s.cmdlineKey()) {
			t.Errorf("usage does not list %s", s.cmdlineKey())
		}
	}
}
