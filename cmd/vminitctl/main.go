package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vminit/vminit/internal/control"
	"github.com/vminit/vminit/internal/event"
	"github.com/vminit/vminit/shutdown"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usageLine = "usage: vminitctl shutdown|reboot|status|ping --to ADDR [--to ADDR...] [--to-file FILE] [--grace D] [--final poweroff|restart|halt] [--timeout D] [--json|--quiet] [--parallel N]"

// run is vminitctl; ctx ends with SIGINT or SIGTERM, and an exchange in
// progress with it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, usageLine)
		fmt.Fprintln(stderr, "ADDR: vsock://CID:PORT, hybrid://PATH:PORT (Firecracker, Cloud Hypervisor), unix://PATH")
		return exitUsage
	}
	verb := args[0]
	fs := flag.NewFlagSet("vminitctl "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var tos multiFlag
	fs.Var(&tos, "to", "target address (repeatable)")
	toFile := fs.String("to-file", "", "read target addresses from FILE, one per line")
	grace := fs.Duration("grace", -1, "grace for the shutdown (default: the guest's)")
	final := fs.String("final", "", "poweroff, restart or halt (default: the guest's)")
	timeout := fs.Duration("timeout", 5*time.Second, "bound on connecting and on the first reply")
	asJSON := fs.Bool("json", false, "print the replies and events as received")
	quiet := fs.Bool("quiet", false, "print only the summary, not each event")
	parallel := fs.Int("parallel", 32, "requests at once, with several targets")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "vminitctl: "+format+"\n%s\n", append(a, usageLine)...)
		return exitUsage
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q", fs.Arg(0))
	}

	req := control.Request{}
	switch verb {
	case "ping":
		req.Verb = control.Ping
	case "status":
		req.Verb = control.Status
	case "shutdown", "reboot":
		req.Verb = control.Shutdown
	default:
		return usage("unknown command %q", verb)
	}
	if req.Verb != control.Shutdown && (*grace >= 0 || *final != "") {
		return usage("--grace and --final go with shutdown and reboot")
	}
	if *grace >= 0 {
		req.Grace, req.HasGrace = *grace, true
	}
	if verb == "reboot" {
		if *final != "" && *final != "restart" {
			return usage("reboot is shutdown with --final restart")
		}
		req.Final, req.HasFinal = shutdown.Restart, true
	} else if *final != "" {
		f, err := shutdown.ParseFinal(*final)
		if err != nil {
			return usage("%v", err)
		}
		req.Final, req.HasFinal = f, true
	}
	if *timeout <= 0 || *parallel < 1 {
		return usage("--timeout and --parallel must be positive")
	}

	if *toFile != "" {
		lines, err := readTargets(*toFile)
		if err != nil {
			return usage("%v", err)
		}
		tos = append(tos, lines...)
	}
	if len(tos) == 0 {
		return usage("no --to address")
	}
	var targets []target
	for _, s := range tos {
		t, err := parseTarget(s)
		if err != nil {
			return usage("%v", err)
		}
		targets = append(targets, t)
	}

	if len(targets) == 1 {
		return one(ctx, targets[0], req, *timeout, *asJSON, *quiet, stdout, stderr)
	}
	return fanOut(ctx, targets, req, *timeout, *asJSON, *parallel, stdout, stderr)
}

func readTargets(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			ts = append(ts, l)
		}
	}
	return ts, sc.Err()
}

// one talks to one guest and prints as things arrive.
func one(ctx context.Context, t target, req control.Request, timeout time.Duration, asJSON, quiet bool, stdout, stderr io.Writer) int {
	var pr event.Printer
	pr.Out = stdout
	r := exchange(ctx, t, req, timeout, func(b []byte) {
		if asJSON {
			fmt.Fprintf(stdout, "%s\n", b)
			return
		}
		var e event.Event
		if err := json.Unmarshal(b, &e); err == nil && req.Verb == control.Shutdown && !quiet {
			pr.Print(e)
		}
	})
	if r.err != nil {
		fmt.Fprintf(stderr, "vminitctl: %v\n", r.err)
	}
	if asJSON || r.err != nil && r.reply.Kind == "" {
		return r.code
	}
	switch req.Verb {
	case control.Ping:
		fmt.Fprintf(stdout, "pong from %s in %s\n", t, event.Round(r.accepted))
	case control.Status:
		fmt.Fprintf(stdout, "%s: %s\n", t, r.reply.String())
	case control.Shutdown:
		if !quiet {
			fmt.Fprintln(stdout)
		}
		r.tl.WriteSummary(stdout)
		fmt.Fprintf(stdout, "host: request → accepted %s, → reboot event %s", event.Round(r.accepted), event.Round(r.rebooted))
		if r.closed != 0 {
			fmt.Fprintf(stdout, ", → guest gone %s", event.Round(r.closed))
		} else if r.tl.Done() {
			fmt.Fprintf(stdout, "; the connection stayed open %s after the reboot event (a VM that only halts keeps it: on Firecracker x86_64 use --final restart)", powerOffWait)
		}
		fmt.Fprintln(stdout)
	}
	return r.code
}

// fanOut sends the request to every target, a bounded number at once, and
// sums up.
func fanOut(ctx context.Context, targets []target, req control.Request, timeout time.Duration, asJSON bool, parallel int, stdout, stderr io.Writer) int {
	results := make([]result, len(targets))
	var mu sync.Mutex // serialises output lines
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			var line func([]byte)
			if asJSON {
				line = func(b []byte) {
					mu.Lock()
					defer mu.Unlock()
					fmt.Fprintf(stdout, "{\"to\":%q,%s\n", t.raw, b[1:])
				}
			}
			results[i] = exchange(ctx, t, req, timeout, line)
		}()
	}
	wg.Wait()

	worst := exitOK
	var lat []time.Duration
	for _, r := range results {
		worst = max(worst, r.code)
		if r.err != nil {
			fmt.Fprintf(stderr, "vminitctl: %v\n", r.err)
		}
		d := r.accepted
		if req.Verb == control.Shutdown {
			d = r.rebooted
			if r.closed != 0 {
				d = r.closed
			}
		}
		if r.code == exitOK || r.code == exitKilled {
			lat = append(lat, d)
		}
		if asJSON {
			continue
		}
		state := map[int]string{exitOK: "ok", exitKilled: "ok, with SIGKILL", exitUnreachable: "unreachable", exitProtocol: "protocol error"}[r.code]
		detail := ""
		if r.code <= exitKilled {
			detail = event.Round(d).String()
			if req.Verb == control.Shutdown && len(r.tl.Killed) > 0 {
				detail += fmt.Sprintf(" (killed %d)", len(r.tl.Killed))
			}
		}
		fmt.Fprintf(stdout, "%-40s %-16s %s\n", r.to, state, detail)
	}
	if !asJSON && len(lat) > 0 {
		slices.Sort(lat)
		what := "request → reply"
		if req.Verb == control.Shutdown {
			what = "request → power-off"
		}
		pct := func(p int) time.Duration { return lat[min(len(lat)-1, len(lat)*p/100)] }
		fmt.Fprintf(stdout, "%d of %d done; %s p50 %s p99 %s max %s\n", len(lat), len(results), what,
			event.Round(pct(50)), event.Round(pct(99)), event.Round(lat[len(lat)-1]))
	}
	return worst
}
