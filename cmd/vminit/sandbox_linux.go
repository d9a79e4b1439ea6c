package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vminit/vminit/internal/demo"
	"github.com/vminit/vminit/internal/event"
	"github.com/vminit/vminit/internal/sandbox"
	"github.com/vminit/vminit/shutdown"
)

// Exit statuses of vminit sandbox besides the workload's own.
const (
	exitUsage   = 2
	exitCrashed = 125 // PID 1 ended without reaching reboot(2), or never started
)

const sandboxUsage = `usage: vminit sandbox [FLAGS] -- COMMAND [ARGS...]

Runs COMMAND under vminit as PID 1 of new user, PID, mount, UTS and IPC
namespaces (root inside is an unprivileged user outside: uid 65534 when run
as root), prints vminit's timeline on stderr, and exits with the command's
status. SIGINT, SIGTERM or SIGHUP to the sandbox asks PID 1 to shut down; a
second one kills the sandbox.

`

func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

func sandboxCommand(args []string) int {
	if wantsHelp(args) {
		fmt.Print(sandboxUsage + usage(onSandbox))
		return 0
	}
	cfg := defaultConfig()
	applied, _, err := cfg.applyArgs(args, onSandbox, true)
	if err == nil && len(cfg.command) == 0 {
		err = errors.New("no command after --")
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "vminit sandbox: %v\n%s%s", err, sandboxUsage, usage(onSandbox))
		return exitUsage
	}
	return runSandbox(cfg, applied, event.Now())
}

// demoCommand runs the sandbox on the demo process tree and asks it to shut
// down after a second, with a short grace.
// A demo is asked to shut down after a second, with a 1 s grace, unless its
// flags say otherwise; with a control address, the host asks (make demo runs
// vminitctl).
func demoCommand(args []string) int {
	if wantsHelp(args) {
		fmt.Print("usage: vminit demo [FLAGS]\n\n" + demo.Banner + "\nThe flags are the sandbox's:\n" + usage(onSandbox))
		return 0
	}
	cfg := defaultConfig()
	cfg.shutdownAfter = time.Second
	applied, _, err := cfg.applyArgs(append([]string{"--grace=1s"}, args...), onSandbox, true)
	if err == nil && len(cfg.command) > 0 {
		err = errors.New("takes no command (use vminit sandbox)")
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "vminit demo: %v\n%s", err, usage(onSandbox))
		return exitUsage
	}
	if len(cfg.control) > 0 && !slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, "shutdown-after") }) {
		cfg.shutdownAfter = 0
	}
	cfg.command = []string{"/proc/self/exe", demo.Role, "tree"}
	if !cfg.json {
		trigger := fmt.Sprintf("after %v the sandbox asks PID 1 to shut down (SIGTERM)", cfg.shutdownAfter)
		if cfg.shutdownAfter == 0 {
			trigger = "the host asks PID 1 to shut down (vminitctl)"
		}
		fmt.Fprintf(os.Stderr, demo.Banner, trigger, cfg.shutdown.Grace)
	}
	start := event.Now()
	os.Setenv(demo.StartEnv, strconv.FormatInt(start, 10))
	return runSandbox(cfg, applied, start)
}

// runSandbox starts vminit as PID 1 of new namespaces with the given init
// flags, relays shutdown requests to it, prints its events, and returns the
// sandbox's exit status.
// runSandbox prints the events on stderr (the workload owns stdout), as lines
// timed from start (CLOCK_MONOTONIC), or as JSON lines; with --report-fd,
// JSON lines go to that descriptor instead.
func runSandbox(cfg config, applied []string, start int64) int {
	var out io.Writer = os.Stderr
	if cfg.reportFD >= 0 {
		out = os.NewFile(uintptr(cfg.reportFD), "report")
		cfg.json = true
	}
	// This process is not PID 1: it catches only what it turns into a
	// shutdown request, then lets the others go back to their defaults
	// (in that order, so that no request can find it without a handler).
	requests := make(chan os.Signal, 4)
	signal.Notify(requests, unix.SIGINT, unix.SIGTERM, unix.SIGHUP)
	// SIGHUP (the terminal went away) asks as SIGTERM: PID 1 ignores SIGHUP.
	asked := func(sig os.Signal) os.Signal {
		if sig == unix.SIGHUP {
			return unix.SIGTERM
		}
		return sig
	}
	signal.Stop(signals)

	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		fmt.Fprintf(os.Stderr, "vminit sandbox: %v\n", err)
		return exitCrashed
	}
	defer exe.Close()
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(os.Stderr, "vminit sandbox: %v\n", err)
		return exitCrashed
	}
	argv := []string{"vminit", "--report-fd=3", "--cmdline=" + cfg.cmdline}
	for _, a := range applied {
		if s := lookupSetting(flagName(a), onInit); s != nil && s.name != "cmdline" && s.name != "report-fd" {
			argv = append(argv, a)
		}
	}
	argv = append(append(argv, "--"), cfg.command...)
	p, err := sandbox.Start(sandbox.Options{
		Exe:   exe,
		Args:  argv,
		Env:   os.Environ(),
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr, w},
	})
	w.Close()
	if err != nil {
		r.Close()
		fmt.Fprintf(os.Stderr, "vminit sandbox: %v\n", err)
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSPC) {
			fmt.Fprintln(os.Stderr, "vminit sandbox: this host does not allow new user namespaces here (see /proc/sys/user/max_user_namespaces)")
		}
		return exitCrashed
	}

	// The report pipe is drained at once, whatever happens to the output:
	// a stalled terminal must not back up into PID 1, whose last events
	// would then be cut by power-off.
	rep := newReport(r)
	type waited struct {
		ws  unix.WaitStatus
		err error
	}
	exited := make(chan waited, 1)
	go func() {
		ws, _, err := p.Wait()
		exited <- waited{ws, err}
	}()
	pr := &printer{out: out, json: cfg.json, p: event.Printer{Out: out, Start: start}}
	if !cfg.json {
		pr.p.Header()
	}
	printed := make(chan struct{})
	go rep.printAll(pr, printed)

	var (
		ready     = rep.ready
		requested os.Signal // a request held until ready
		sent      int
		after     <-chan time.Time
		end       *waited
	)
	send := func(sig os.Signal) {
		sent++
		if sent > 1 {
			fmt.Fprintln(os.Stderr, "vminit sandbox: second request: killing the sandbox")
			sig = unix.SIGKILL
		}
		_ = p.Signal(sig.(syscall.Signal))
	}
	for end == nil {
		select {
		case <-ready:
			ready = nil
			if requested != nil {
				send(requested)
			}
			if cfg.shutdownAfter > 0 {
				after = time.After(cfg.shutdownAfter)
			}
		case sig := <-requests:
			sig = asked(sig)
			if ready != nil && sent == 0 {
				requested = sig
				fmt.Fprintf(os.Stderr, "vminit sandbox: %s: held until PID 1 is ready\n", unix.SignalName(sig.(syscall.Signal)))
			} else {
				send(sig)
			}
		case <-after:
			after = nil
			if sent == 0 {
				send(unix.SIGTERM)
			}
		case e := <-exited:
			end = &e
		}
	}
	signal.Stop(requests)
	// PID 1 is gone, and with it every writer of the pipe.
	<-rep.done
	<-printed
	return sandboxStatus(cfg, rep.timeline(), end.ws, end.err, pr)
}

// sandboxStatus turns PID 1's end into the sandbox's exit status.
func sandboxStatus(cfg config, tl *event.Timeline, ws unix.WaitStatus, err error, pr *printer) int {
	if !cfg.json {
		fmt.Fprintln(pr.out)
		tl.WriteSummary(pr.out)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "vminit sandbox: %v\n", err)
		return exitCrashed
	}
	rebooted := ws.Signaled() && (ws.Signal() == unix.SIGINT || ws.Signal() == unix.SIGHUP)
	if !rebooted {
		fmt.Fprintf(os.Stderr, "vminit sandbox: PID 1 ended without reaching reboot(2): %s\n", sandbox.Describe(ws))
		return exitCrashed
	}
	if !tl.Done() {
		fmt.Fprintln(os.Stderr, "vminit sandbox: PID 1 rebooted, but its last events were lost")
	}
	want := unix.SIGINT
	if cfg.shutdown.Final == shutdown.Restart {
		want = unix.SIGHUP
	}
	if ws.Signal() != want {
		fmt.Fprintf(os.Stderr, "vminit sandbox: PID 1 ended by %s, expected %s for %s\n", unix.SignalName(ws.Signal()), unix.SignalName(want), cfg.shutdown.Final)
	}
	if !cfg.json {
		fmt.Fprintf(pr.out, "PID 1 called reboot(%s), which ends a PID namespace (its parent sees %s)\n", tl.Command, unix.SignalName(ws.Signal()))
	}
	if len(cfg.command) > 0 && !tl.Workload {
		fmt.Fprintln(os.Stderr, "vminit sandbox: the workload's exit status was not reported")
		return exitCrashed
	}
	return tl.WorkloadStatus
}

func flagName(a string) string {
	for len(a) > 0 && a[0] == '-' {
		a = a[1:]
	}
	for i := range len(a) {
		if a[i] == '=' {
			return a[:i]
		}
	}
	return a
}

// line is one line of the report pipe.
type line struct {
	raw []byte
	ev  event.Event
	err error
}

// report reads PID 1's report pipe into a queue that only grows, on a
// goroutine of its own, and follows the timeline as the lines come.
type report struct {
	ready chan struct{} // closed at the ready event
	done  chan struct{} // closed at the end of the pipe

	mu    sync.Mutex
	queue []line
	kick  chan struct{}
	tl    event.Timeline
}

func newReport(r io.ReadCloser) *report {
	rep := &report{ready: make(chan struct{}), done: make(chan struct{}), kick: make(chan struct{}, 1)}
	go rep.read(r)
	return rep
}

func (rep *report) read(r io.ReadCloser) {
	defer close(rep.done)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	isReady := false
	for sc.Scan() {
		l := line{raw: append([]byte(nil), sc.Bytes()...)}
		l.err = json.Unmarshal(l.raw, &l.ev)
		rep.mu.Lock()
		rep.queue = append(rep.queue, l)
		if l.err == nil {
			rep.tl.Add(l.ev)
		}
		rep.mu.Unlock()
		select {
		case rep.kick <- struct{}{}:
		default:
		}
		if l.err == nil && l.ev.Kind == event.Ready && !isReady {
			isReady = true
			close(rep.ready)
		}
	}
}

// printAll prints the queued lines as they come, until the pipe's end.
func (rep *report) printAll(pr *printer, printed chan<- struct{}) {
	defer close(printed)
	for {
		rep.mu.Lock()
		q := rep.queue
		rep.queue = nil
		rep.mu.Unlock()
		for _, l := range q {
			pr.print(l)
		}
		if len(q) > 0 {
			continue
		}
		select {
		case <-rep.kick:
		case <-rep.done:
			rep.mu.Lock()
			empty := len(rep.queue) == 0
			rep.mu.Unlock()
			if empty {
				return
			}
		}
	}
}

func (rep *report) timeline() *event.Timeline {
	rep.mu.Lock()
	defer rep.mu.Unlock()
	return &rep.tl
}

// printer shows the events: as received (JSON), or one readable line each.
type printer struct {
	out  io.Writer
	json bool
	p    event.Printer
}

func (p *printer) print(l line) {
	if p.json || l.err != nil {
		fmt.Fprintf(p.out, "%s\n", l.raw)
		return
	}
	p.p.Print(l.ev)
}
