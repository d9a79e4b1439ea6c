package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vminit/vminit/internal/kmod"
	"github.com/vminit/vminit/shutdown"
	"github.com/vminit/vminit/vsockraw"
)

// config is everything PID 1 can be told, from the kernel command line
// (vminit.KEY=VALUE) and from flags (--KEY VALUE); flags win.
type config struct {
	shutdown       shutdown.Config
	shutdownOnExit bool
	env            []string
	control        []vsockraw.Addr // nil: the default for the mode; empty: none
	controlPeers   []uint32        // vsock CIDs allowed to connect; nil: any
	controlIdle    time.Duration
	reapNames      bool
	json           bool
	modules        []string // kernel modules to load (VM only)
	command        []string

	// Set only by flags.
	cmdline       string // stands in for /proc/cmdline when hasLine
	hasLine       bool
	reportFD      int           // -1: none
	shutdownAfter time.Duration // sandbox: request a shutdown this long after ready

	// From the kernel command line: what follows "--", and the parameters
	// with neither '=' nor '.', which the kernel passes to init's argv too
	// when it does not know them (see kernelArgs).
	cmdlineTail []string
	cmdlineBare []string
}

func defaultConfig() config {
	return config{
		shutdown:       shutdown.DefaultConfig(),
		shutdownOnExit: true,
		reportFD:       -1,
		controlPeers:   []uint32{vsockraw.CIDHost},
		controlIdle:    10 * time.Second,
		reapNames:      true,
	}
}

// DefaultControlPort is the vsock port a VM's PID 1 listens on unless told
// otherwise.
const DefaultControlPort = 10240

// A setting is one configuration key. The same table drives the flags, the
// kernel command line keys and the reference in README.md.
type setting struct {
	name  string // flag name; the cmdline key is "vminit." + name with '-' as '_'
	arg   string // the value's name in usage; "" for a boolean
	def   string
	usage string
	where scope
	set   func(c *config, v string) error
}

// scope says where a setting is accepted.
type scope uint8

const (
	onCmdline scope = 1 << iota // vminit.KEY=VALUE on the kernel command line
	onInit                      // a flag of vminit as PID 1
	onSandbox                   // a flag of vminit sandbox (passed on to its PID 1 when onInit too)

	everywhere = onCmdline | onInit | onSandbox
)

var settings = []setting{
	{name: "grace", where: everywhere, arg: "DURATION", def: "10s",
		usage: "how long processes have to exit after SIGTERM before SIGKILL",
		set:   func(c *config, v string) error { return setDuration(&c.shutdown.Grace, v) }},
	{name: "kill-timeout", where: everywhere, arg: "DURATION", def: "2s",
		usage: "how long to wait for processes after SIGKILL",
		set:   func(c *config, v string) error { return setDuration(&c.shutdown.KillTimeout, v) }},
	{name: "sync-timeout", where: everywhere, arg: "DURATION", def: "30s",
		usage: "bound on sync(2), and then on the read-only remounts",
		set:   func(c *config, v string) error { return setDuration(&c.shutdown.SyncTimeout, v) }},
	{name: "final", where: everywhere, arg: "poweroff|restart|halt", def: "poweroff",
		usage: "the reboot(2) command at the end (restart on Firecracker x86_64)",
		set: func(c *config, v string) (err error) {
			c.shutdown.Final, err = shutdown.ParseFinal(v)
			return err
		}},
	{name: "shutdown-on-exit", where: everywhere, arg: "", def: "true",
		usage: "shut the VM down when the workload exits",
		set:   func(c *config, v string) error { return setBool(&c.shutdownOnExit, v) }},
	{name: "env", where: everywhere, arg: "KEY=VALUE", def: "",
		usage: "set a variable in the workload's environment (repeatable)",
		set: func(c *config, v string) error {
			if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
				return fmt.Errorf("want KEY=VALUE, got %q", v)
			}
			c.env = append(c.env, v)
			return nil
		}},
	{name: "control", where: everywhere, arg: "ADDR", def: fmt.Sprintf("vsock:%d in a VM, none in the sandbox", DefaultControlPort),
		usage: "serve the control protocol on vsock:PORT, unix:PATH or vport:NAME (repeatable; none for none)",
		set: func(c *config, v string) error {
			if c.control == nil {
				c.control = []vsockraw.Addr{}
			}
			if v == "none" {
				return nil
			}
			a, err := vsockraw.ParseAddr(v)
			if err != nil {
				return err
			}
			c.control = append(c.control, a)
			return nil
		}},
	{name: "control-peers", where: everywhere, arg: "CID,...|any", def: "2",
		usage: "vsock CIDs allowed to connect to the control port (2 is the host)",
		set: func(c *config, v string) error {
			if v == "any" {
				c.controlPeers = nil
				return nil
			}
			var cids []uint32
			for _, f := range strings.Split(v, ",") {
				n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 32)
				if err != nil {
					return fmt.Errorf("want CIDs separated by commas, or any: %v", err)
				}
				cids = append(cids, uint32(n))
			}
			c.controlPeers = cids
			return nil
		}},
	{name: "control-idle", where: everywhere, arg: "DURATION", def: "10s",
		usage: "how long a control client may take to send a complete request",
		set: func(c *config, v string) error {
			if err := setDuration(&c.controlIdle, v); err != nil {
				return err
			}
			if c.controlIdle == 0 {
				return fmt.Errorf("must be positive")
			}
			return nil
		}},
	{name: "reap-names", where: everywhere, arg: "", def: "true",
		usage: "name every reaped process in its event (read from /proc: about twice PID 1's CPU time per process)",
		set:   func(c *config, v string) error { return setBool(&c.reapNames, v) }},
	{name: "json", where: everywhere, arg: "", def: "false",
		usage: "log JSON lines instead of human-readable lines",
		set:   func(c *config, v string) error { return setBool(&c.json, v) }},
	{name: "modules", where: onCmdline | onInit, arg: "NAME,NAME...", def: "",
		usage: "kernel modules to load with their dependencies (from modules.dep) before the workload starts; in a VM only (repeatable)",
		set: func(c *config, v string) error {
			c.modules = append(c.modules, kmod.ParseList(v)...)
			return nil
		}},
	{name: "cmdline", arg: "STRING", where: onInit | onSandbox,
		usage: "use STRING instead of /proc/cmdline (the sandbox never reads the host's)",
		set: func(c *config, v string) error {
			c.cmdline, c.hasLine = v, true
			return nil
		}},
	{name: "report-fd", arg: "FD", where: onInit | onSandbox,
		usage: "write JSON events to this inherited descriptor instead of the console (PID 1), or instead of stderr (the sandbox)",
		set: func(c *config, v string) error {
			fd, err := strconv.Atoi(v)
			if err != nil || fd < 3 {
				return fmt.Errorf("want a descriptor number of 3 or more, got %q", v)
			}
			c.reportFD = fd
			return nil
		}},
	{name: "shutdown-after", arg: "DURATION", where: onSandbox,
		usage: "request a shutdown (SIGTERM to PID 1) this long after PID 1 is ready",
		set:   func(c *config, v string) error { return setDuration(&c.shutdownAfter, v) }},
}

func setDuration(d *time.Duration, v string) error {
	x, err := time.ParseDuration(v)
	if err != nil {
		return err
	}
	if x < 0 {
		return fmt.Errorf("negative duration %s", v)
	}
	*d = x
	return nil
}

func setBool(b *bool, v string) error {
	x, err := strconv.ParseBool(v)
	if err != nil {
		switch v {
		case "yes", "on":
			x, err = true, nil
		case "no", "off":
			x, err = false, nil
		default:
			return fmt.Errorf("want true or false, got %q", v)
		}
	}
	*b = x
	return nil
}

func lookupSetting(name string, where scope) *setting {
	for i := range settings {
		if settings[i].name == name && settings[i].where&where != 0 {
			return &settings[i]
		}
	}
	return nil
}

// cmdlineKey returns the kernel command line key of a setting.
func (s *setting) cmdlineKey() string { return "vminit." + strings.ReplaceAll(s.name, "-", "_") }

// applyCmdline applies the vminit.* parameters of a kernel command line
// (the kernel's own rule: '-' and '_' are the same in a name), and keeps what
// follows "--" (see applyArgs). It never fails: a bad key or value is
// reported and the setting keeps its value, because PID 1 must come up
// whatever the command line says.
func (c *config) applyCmdline(line string) (warnings []error) {
	params, tail := splitCmdline(line)
	c.cmdlineTail, c.cmdlineBare = tail, nil
	for _, p := range params {
		key, val, hasVal := strings.Cut(p, "=")
		if !hasVal && !strings.Contains(key, ".") {
			c.cmdlineBare = append(c.cmdlineBare, key)
		}
		if !strings.HasPrefix(key, "vminit.") {
			continue
		}
		key = strings.ReplaceAll(key, "-", "_")
		var s *setting
		for i := range settings {
			if settings[i].where&onCmdline != 0 && settings[i].cmdlineKey() == key {
				s = &settings[i]
			}
		}
		if s == nil {
			warnings = append(warnings, fmt.Errorf("kernel command line: unknown key %s (ignored)", key))
			continue
		}
		if s.arg == "" && !strings.Contains(p, "=") {
			val = "true"
		}
		if err := s.set(c, val); err != nil {
			warnings = append(warnings, fmt.Errorf("kernel command line: %s=%s: %v (keeping the default %s)", key, val, err, s.def))
		}
	}
	return warnings
}

// splitCmdline splits a kernel command line into its parameters as the
// kernel does (lib/cmdline.c next_arg, kernel/params.c parse_args): white
// space separates parameters unless inside double quotes; a quote that opens
// the parameter, or its value, is removed with the parameter's last
// character if that is a quote too, and every other quote is kept; a bare
// "--" ends the parameters (what follows is init's). It returns the
// parameters and what follows "--" (nil if there is no "--").
func splitCmdline(line string) (params, tail []string) {
	s := strings.TrimLeft(line, " \t\n")
	for s != "" {
		p, rest := nextArg(s)
		if p == "--" {
			tail = []string{}
			for rest = strings.TrimLeft(rest, " \t\n"); rest != ""; rest = strings.TrimLeft(rest, " \t\n") {
				var w string
				w, rest = nextArg(rest)
				tail = append(tail, w)
			}
			return params, tail
		}
		params = append(params, p)
		s = strings.TrimLeft(rest, " \t\n")
	}
	return params, nil
}

// nextArg is lib/cmdline.c's next_arg for a non-empty s with no leading
// space.
func nextArg(s string) (param, rest string) {
	inQuote, quoted := false, false
	if s[0] == '"' {
		s, inQuote, quoted = s[1:], true, true
	}
	equals, i := -1, 0
	for ; i < len(s); i++ {
		c := s[i]
		if (c == ' ' || c == '\t' || c == '\n') && !inQuote {
			break
		}
		if equals < 0 && c == '=' && i > 0 {
			equals = i
		}
		if c == '"' {
			inQuote = !inQuote
		}
	}
	p, rest := s[:i], s[i:]
	if equals >= 0 && strings.HasPrefix(p[equals+1:], "\"") {
		p = p[:equals+1] + strings.TrimSuffix(p[equals+2:], "\"")
	} else if quoted {
		p = strings.TrimSuffix(p, "\"")
	}
	return p, rest
}

// applyArgs applies the flags of scope where and sets the command: everything
// after "--" or, for PID 1 (whose arguments come from the kernel), the first
// argument that is not a flag. Flags are --name VALUE, --name=VALUE, or
// --name alone for booleans; one dash works too. If strict (a command line
// tool), the first bad flag is an error; otherwise (PID 1) bad flags are
// reported and skipped, so that a typo never costs the workload. It returns
// the flags it applied, for passing on.
func (c *config) applyArgs(args []string, where scope, strict bool) (applied []string, warnings []error, err error) {
	c.command = nil
	if !strict {
		var stray []string
		if args, stray = c.kernelArgs(args); len(stray) > 0 {
			warnings = append(warnings, fmt.Errorf("kernel parameters passed to init as arguments, ignored: %s (put the workload after -- on the kernel command line)", strings.Join(stray, " ")))
		}
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			c.command = args[i+1:]
			break
		}
		if len(a) < 2 || a[0] != '-' {
			if strict {
				// A tool's command line: the command follows "--", so
				// that a stray word (--shutdown-on-exit false) is an
				// error, not a command.
				return applied, warnings, fmt.Errorf("unexpected argument %q: the command goes after --, and a boolean flag takes =false", a)
			}
			c.command = args[i:]
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		s := lookupSetting(name, where)
		switch {
		case s == nil:
			err = fmt.Errorf("unknown flag %s", a)
		case s.arg == "" && !hasVal:
			val = "true"
		case !hasVal && i+1 < len(args):
			i++
			val = args[i]
		case !hasVal:
			err = fmt.Errorf("flag --%s needs a value (%s)", name, s.arg)
		}
		if err == nil {
			if e := s.set(c, val); e != nil {
				err = fmt.Errorf("--%s %s: %v", name, val, e)
			} else {
				applied = append(applied, "--"+name+"="+val)
			}
		}
		if err != nil {
			if strict {
				return applied, warnings, err
			}
			if s != nil && s.def != "" {
				err = fmt.Errorf("%w (keeping %s)", err, s.def)
			}
			warnings = append(warnings, err)
			err = nil
		}
	}
	return applied, warnings, nil
}

// kernelArgs separates, in the arguments the kernel gave init, what init was
// meant to get from what the kernel added: init's argv is every parameter the
// kernel did not recognise that has neither '=' nor '.' (a typo, "splash"),
// then what follows "--". If args ends with the command line's "--" part,
// only that part counts; if there is no "--" and every argument is such a
// stray word, none counts. Arguments from anywhere else (an initramfs script
// that execs vminit) are kept as they are.
func (c *config) kernelArgs(args []string) (kept, stray []string) {
	if tail := c.cmdlineTail; tail != nil {
		if n := len(args) - len(tail); n > 0 && slices.Equal(args[n:], tail) {
			return tail, args[:n]
		}
		return args, nil
	}
	if len(args) > 0 && len(c.cmdlineBare) > 0 {
		for _, a := range args {
			if !slices.Contains(c.cmdlineBare, a) {
				return args, nil
			}
		}
		return nil, args
	}
	return args, nil
}

// usage formats the settings of scope where, for --help.
func usage(where scope) string {
	var b strings.Builder
	for _, s := range settings {
		if s.where&where == 0 {
			continue
		}
		flag := "--" + s.name
		if s.arg != "" {
			flag += " " + s.arg
		}
		fmt.Fprintf(&b, "  %-32s %s", flag, s.usage)
		if s.def != "" {
			fmt.Fprintf(&b, " (default %s)", s.def)
		}
		if s.where&onCmdline != 0 && where&onInit != 0 {
			arg := s.arg
			if arg == "" {
				arg = "true|false"
			}
			fmt.Fprintf(&b, "\n  %-32s kernel command line: %s=%s", "", s.cmdlineKey(), arg)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
