package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vminit/vminit/internal/control"
	"github.com/vminit/vminit/internal/event"
	"github.com/vminit/vminit/internal/guard"
	"github.com/vminit/vminit/internal/rawfile"
	"github.com/vminit/vminit/loop"
	"github.com/vminit/vminit/shutdown"
	"github.com/vminit/vminit/vsockraw"
)

// pid1 is vminit acting as init. All of its state is owned by the loop
// goroutine once the loop runs.
type pid1 struct {
	mode    guard.Mode
	cfg     config
	out     *event.Writer // console or report pipe, never blocking the loop
	sink    *event.Sink
	log     *slog.Logger
	loop    *loop.Loop
	reaper  *shutdown.Reaper
	seq     *shutdown.Sequence
	control *control.Server
	started int64 // CLOCK_MONOTONIC at start

	workload       int // pid of the workload, 0 if none runs
	workloadEnded  bool
	workloadStatus int
}

// runInit is vminit as PID 1. It never returns and never exits once the
// guard has let it act as init: every fatal path ends in sync and reboot(2).
func runInit(args []string) {
	m, err := guard.Check()
	if err != nil {
		fmt.Fprintf(os.Stderr, "vminit: %v\n", err)
		os.Exit(1)
	}
	sigErr := initSignalErr
	// Descriptors left open by whoever started PID 1 (in the sandbox, its
	// caller's) must not reach the workload. After the re-execution, which
	// needs the report descriptor.
	closeOnExec()
	p := &pid1{mode: m, started: event.Now()}
	defer p.emergency()
	p.start(args)
	if sigErr != nil {
		p.emit(event.Event{Kind: event.Error, Step: "boot", Level: "ERROR", Err: "signal mask: " + sigErr.Error()})
	}
	err = p.loop.Run()
	panic(fmt.Sprintf("event loop stopped: %v", err))
}

func (p *pid1) start(args []string) {
	// Flags first, for --report-fd and --cmdline; then the kernel command
	// line; then the flags again, so that they win.
	var warnings []error
	p.cfg = defaultConfig()
	_, _, _ = p.cfg.applyArgs(args, onInit, false)
	flags := p.cfg

	steps := vmSteps
	if p.mode == guard.Sandbox {
		steps = sandboxSteps
	}
	type outcome struct {
		step bootStep
		err  error
	}
	var outcomes []outcome
	for _, s := range steps {
		outcomes = append(outcomes, outcome{s, s.run()})
	}

	p.cfg = defaultConfig()
	switch {
	case flags.hasLine:
		warnings = append(warnings, p.cfg.applyCmdline(flags.cmdline)...)
	case p.mode == guard.VM:
		line, err := rawfile.ReadFile("/proc/cmdline")
		if err != nil {
			warnings = append(warnings, fmt.Errorf("read kernel command line: %w", err))
		}
		warnings = append(warnings, p.cfg.applyCmdline(string(line))...)
	}
	if p.mode == guard.Sandbox {
		// The sandbox's arguments come from vminit sandbox, never from a
		// kernel: nothing in them is stray.
		p.cfg.cmdlineTail, p.cfg.cmdlineBare = nil, nil
	}
	_, w, _ := p.cfg.applyArgs(args, onInit, false)
	warnings = append(warnings, w...)

	var dst io.Writer = os.Stderr
	if p.cfg.reportFD >= 0 {
		unix.CloseOnExec(p.cfg.reportFD) // not for the workload
		dst = os.NewFile(uintptr(p.cfg.reportFD), "report")
		p.cfg.json = true
	}
	p.out = event.NewWriter(dst, 4<<20)
	p.sink = event.NewSink(p.out, p.cfg.json, slog.LevelInfo)
	p.log = slog.New(p.sink.Handler())

	for _, w := range warnings {
		p.log.Warn("configuration", "err", w)
	}
	fatal := false
	for _, o := range outcomes {
		switch {
		case o.err == nil:
			p.log.Info(o.step.String())
		case errors.Is(o.err, errSkipped):
		default:
			p.emit(event.Event{Kind: event.Error, Step: "boot", Level: "ERROR", Err: fmt.Sprintf("%s: %v", o.step, o.err)})
			// In the sandbox, a step that failed leaves PID 1 without its
			// own /proc or with mounts shared with the host.
			fatal = fatal || p.mode == guard.Sandbox
		}
	}
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF); err != nil {
		if p.mode == guard.Sandbox {
			p.log.Info("Ctrl-Alt-Del: left to the kernel (expected in the sandbox: reboot(CAD_OFF) is refused in a user namespace)")
		} else {
			p.emit(event.Event{Kind: event.Error, Step: "boot", Level: "ERROR", Err: "reboot(CAD_OFF): " + err.Error()})
		}
	}
	if p.mode == guard.VM {
		p.loadModules()  // after /proc, /sys and /dev, before anything needs a driver; Ctrl-Alt-Del is a signal by now
		p.resolvePorts() // the virtio-serial ports those drivers add, by name, without udev
	}

	// The runtime's timers need its network poller (an epoll instance and
	// an eventfd), and its heap scavenger arms one sooner or later: start
	// it now, so that PID 1's descriptors stay the same from ready on.
	time.AfterFunc(time.Hour, func() {}).Stop() // a func timer reaches the heap at once (a channel timer only when waited on)

	var err error
	if p.loop, err = loop.New(); err != nil {
		panic(err)
	}
	p.reaper = shutdown.NewReaper()
	p.reaper.Names = p.cfg.reapNames
	p.reaper.OnExit = p.exited
	p.reaper.OnError = func(err error) {
		p.emit(event.Event{Kind: event.Error, Step: "reap", Level: "ERROR", Err: err.Error()})
	}
	sc := p.cfg.shutdown
	sc.Remount = !fatal
	if p.mode == guard.Sandbox {
		// The host's filesystems, seen through the sandbox's mount
		// namespace, are not the sandbox's to remount: only what was
		// mounted inside it after boot is.
		inherited := mountIDs()
		sc.Leave = func(m shutdown.Mount) bool { return inherited[m.ID] }
		sc.LeaveWhy = "inherited from the host"
		sc.Expected = func(err error) string {
			if errors.Is(err, unix.EPERM) {
				return "expected in the sandbox: the filesystem belongs to the host"
			}
			return ""
		}
	}
	if p.seq, err = shutdown.New(p.loop, p.reaper, p.emit, sc); err != nil {
		panic(err)
	}
	p.seq.OnFinish(func(done func()) { p.out.Flush(done) })
	if err := p.loop.Signals(signals, p.signal); err != nil {
		panic(err)
	}
	p.listen()
	if p.mode == guard.VM {
		p.watchPowerButtons()
	}
	p.emit(event.Event{Kind: event.Ready, Mode: p.mode.String()})

	p.reaper.Reap() // children inherited before the loop, and no SIGCHLD lost before it
	if fatal {
		lateSignals()
		p.seq.Start("boot_failure")
		return
	}
	p.startWorkload()
	lateSignals()
}

// mountIDs returns the IDs of the mounts in PID 1's mount namespace.
func mountIDs() map[int]bool {
	ids := make(map[int]bool)
	b, err := rawfile.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ids
	}
	ms, _ := shutdown.ParseMountinfo(bytes.NewReader(b))
	for _, m := range ms {
		ids[m.ID] = true
	}
	return ids
}

// emit reports an event to the console (or the sandbox's report pipe), and
// to the hosts that asked for a shutdown.
func (p *pid1) emit(e event.Event) {
	if e.Mono == 0 {
		e.Mono = event.Now()
	}
	p.sink.Emit(e)
	if p.control != nil {
		p.control.Broadcast(e)
	}
}

// listen opens the control listeners before the workload starts: a VM
// listens on the default vsock port unless told otherwise; the sandbox only
// where told (vsock is not namespaced: a sandbox's port would be the host's).
func (p *pid1) listen() {
	limits := control.DefaultLimits
	limits.Idle = p.cfg.controlIdle
	p.control = control.NewServer(p.loop, p, p.log, limits)
	p.seq.OnFinish(p.control.Finish)
	addrs := p.cfg.control
	if addrs == nil && p.mode == guard.VM {
		addrs = []vsockraw.Addr{{Kind: vsockraw.VSock, Port: DefaultControlPort}}
	}
	peers := p.cfg.controlPeers
	allow := func(peer vsockraw.Peer) bool { return peers == nil || slices.Contains(peers, peer.CID) }
	for _, a := range addrs {
		if err := p.control.Listen(a, allow); err != nil {
			if p.cfg.control == nil {
				// The default, on a VM with no vsock device or no
				// transport loaded: worth a word, not an error.
				p.log.Warn("control: no listener on the default "+a.String()+" (a vsock device and its transport are needed: vminit.modules=vmw_vsock_virtio_transport; vminit.control=none silences this)", "err", err)
				continue
			}
			p.emit(event.Event{Kind: event.Error, Step: "control", Level: "ERROR", Err: err.Error()})
			continue
		}
		p.log.Info("control: serving", "addr", a.String())
	}
}

// Status answers the control protocol's status request.
func (p *pid1) Status() event.Event {
	now := event.Now()
	procs, _ := shutdown.Processes()
	e := event.Event{Kind: event.State, Mono: now, Uptime: time.Duration(now - p.started), Procs: len(procs), Phase: p.seq.Phase().String()}
	switch {
	case p.workload != 0:
		e.Workload, e.PID = "running", p.workload
	case p.workloadEnded:
		e.Workload, e.Status = "exited", p.workloadStatus
	default:
		e.Workload = "none"
	}
	return e
}

// Shutdown answers the control protocol's shutdown request: it begins the
// shutdown, or joins the one under way (a grace may shorten it, never
// lengthen it).
func (p *pid1) Shutdown(r control.Request) (event.Event, func()) {
	now := event.Now()
	switch phase := p.seq.Phase(); phase {
	case shutdown.Running:
		grace, final := p.cfg.shutdown.Grace, p.cfg.shutdown.Final
		if r.HasGrace {
			grace = r.Grace
		}
		if r.HasFinal {
			final = r.Final
		}
		reply := event.Event{Kind: event.Accepted, Mono: now, Grace: grace, Command: final.String(), Phase: shutdown.Terminating.String()}
		return reply, func() { p.seq.StartWith("control ("+r.From+")", grace, final) }
	case shutdown.Frozen:
		return event.Event{Kind: event.Error, Mono: now, Err: "reboot(2) failed: PID 1 is frozen"}, nil
	default:
		if r.HasGrace {
			p.seq.Shorten(r.Grace)
		}
		reply := event.Event{Kind: event.Accepted, Mono: now, Grace: p.seq.GraceLeft(), Command: p.seq.Final().String(), Phase: phase.String()}
		if r.HasFinal && r.Final != p.seq.Final() {
			reply.Msg = "joined a shutdown under way: its final command stays " + p.seq.Final().String()
		}
		return reply, nil
	}
}

// signal handles every signal PID 1 receives.
func (p *pid1) signal(sig unix.Signal) {
	switch sig {
	case unix.SIGCHLD:
		// One write to the console for the whole drain, not one per
		// process: the writer's goroutine is woken once.
		p.out.Hold()
		p.reaper.Reap()
		p.out.Release()
	case unix.SIGPIPE:
		// A write to a closed pipe (a report pipe whose reader is gone):
		// logging it would write there again. The writer gives up on such
		// a destination by itself.
	case unix.SIGTERM, unix.SIGINT, unix.SIGPWR:
		// SIGINT is Ctrl-Alt-Del once CAD is off; SIGPWR comes from a UPS
		// daemon or a VMM's power event.
		if !p.seq.Start(unix.SignalName(sig)) {
			p.log.Info("shutdown already under way", "signal", unix.SignalName(sig), "phase", p.seq.Phase())
		}
	default:
		p.log.Info("ignoring signal", "signal", signalName(sig))
	}
}

func signalName(sig unix.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return fmt.Sprintf("signal %d", int(sig))
}

// exited is the reaper's OnExit.
func (p *pid1) exited(e shutdown.Exit) {
	ev := event.Event{Kind: event.Reaped, PID: e.PID, Comm: e.Comm, Status: e.Status}
	if e.Signal != 0 {
		ev.Signal = signalName(unix.Signal(e.Signal))
	}
	p.emit(ev)
	if e.PID != p.workload || p.workload == 0 {
		return
	}
	ev.Kind, ev.Comm = event.WorkloadExit, ""
	p.emit(ev)
	p.ended(e.Status)
}

// ended records the workload's status and, if so configured, shuts down.
func (p *pid1) ended(status int) {
	p.workload, p.workloadEnded, p.workloadStatus = 0, true, status
	if p.cfg.shutdownOnExit {
		p.seq.Start("workload_exit")
	}
}

// startWorkload starts the command with fork and exec and leaves its wait to
// the reaper: nothing else in PID 1 ever waits.
func (p *pid1) startWorkload() {
	argv := p.cfg.command
	if len(argv) == 0 {
		p.log.Info("no workload given: waiting for a shutdown request")
		return
	}
	env := p.workloadEnv()
	path, err := lookPath(argv[0], env)
	var pid int
	if err == nil {
		pid, err = syscall.ForkExec(path, argv, &syscall.ProcAttr{
			Env:   env,
			Files: []uintptr{0, 1, 2},
			Sys:   &syscall.SysProcAttr{Setsid: true},
		})
	}
	if err != nil {
		status := 127 // as a shell reports a command it cannot find
		if errors.Is(err, unix.EACCES) || errors.Is(err, unix.ENOEXEC) {
			status = 126
		}
		p.emit(event.Event{Kind: event.Error, Step: "workload", Level: "ERROR", Err: fmt.Sprintf("start %s: %v", argv[0], err)})
		p.emit(event.Event{Kind: event.WorkloadExit, Status: status})
		p.ended(status)
		return
	}
	comm := filepath.Base(path)
	if len(comm) > 15 {
		comm = comm[:15] // TASK_COMM_LEN
	}
	p.workload = pid
	p.reaper.Started(pid, comm)
	p.emit(event.Event{Kind: event.WorkloadStart, PID: pid, Comm: comm, Argv: argv})
}

// defaultPath is the workload's PATH when the environment has none (the
// kernel starts init with HOME=/ and TERM=linux only).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func (p *pid1) workloadEnv() []string {
	env := os.Environ()
	if os.Getenv("PATH") == "" {
		env = append(env, "PATH="+defaultPath)
	}
	for _, kv := range p.cfg.env {
		k, _, _ := strings.Cut(kv, "=")
		env = setenv(env, k, kv)
	}
	return env
}

func setenv(env []string, key, kv string) []string {
	for i, e := range env {
		if strings.HasPrefix(e, key+"=") {
			env[i] = kv
			return env
		}
	}
	return append(env, kv)
}

// lookPath finds a command as a shell would: a name with a slash is a path,
// any other is looked up in the environment's PATH.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := defaultPath
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		f := filepath.Join(dir, name)
		if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return f, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, os.ErrNotExist)
}

// emergency is the fatal path: a panic, or the loop stopping. It reports
// what happened, then shutdown.Emergency syncs, flushes and reboots.
func (p *pid1) emergency() {
	r := recover()
	fmt.Fprintf(os.Stderr, "vminit: fatal: %v\n%s", r, debug.Stack())
	var flush func(func())
	if p.sink != nil {
		func() {
			defer func() { _ = recover() }() // a second panic must not end PID 1
			p.sink.Emit(event.Event{Kind: event.Error, Step: "fatal", Level: "ERROR", Err: fmt.Sprint(r)})
		}()
		flush = p.out.Flush
	}
	timeout := p.cfg.shutdown.SyncTimeout
	if timeout <= 0 {
		timeout = shutdown.DefaultConfig().SyncTimeout
	}
	shutdown.Emergency(p.cfg.shutdown.Final, timeout, flush)
}
