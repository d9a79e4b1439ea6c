package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	fs := flag.NewFlagSet("vm", flag.ExitOnError)
	machineList := fs.String("machines", "microvm,q35", "machines to boot, comma-separated")
	only := fs.String("only", "", "scenario numbers to run, comma-separated (test)")
	runs := fs.Int("runs", 0, "boots of the scenarios timed over several runs (default: each scenario's own, 3)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: go run ./bench/vm [FLAGS] demo|test

  demo   boot a VM with vminit as /init and a demo process tree, press its
         power button, print the console and both timelines (make vm)
  test   run the issue's scenarios on each machine and report (make vm-test)

flags:
`)
		fs.PrintDefaults()
	}
	args := os.Args[1:]
	mode := "test"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		mode, args = args[0], args[1:]
	}
	_ = fs.Parse(args)
	ms, err := pickMachines(*machineList)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vm:", err)
		os.Exit(2)
	}
	e, err := setup(os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vm: cannot boot VMs here:", err)
		os.Exit(1)
	}
	switch mode {
	case "demo":
		os.Exit(demo(e, ms[0], os.Stdout))
	case "test":
		sel, err := pickScenarios(*only, *runs)
		if err != nil {
			fmt.Fprintln(os.Stderr, "vm:", err)
			os.Exit(2)
		}
		_, failed := runAll(e, ms, sel, os.Stdout)
		if failed > 0 {
			os.Exit(1)
		}
	default:
		fs.Usage()
		os.Exit(2)
	}
}

func pickMachines(list string) ([]machine, error) {
	var ms []machine
	for _, n := range strings.Split(list, ",") {
		m, ok := machineNamed(strings.TrimSpace(n))
		if !ok {
			return nil, fmt.Errorf("unknown machine %q (microvm, q35)", n)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// pickScenarios selects scenarios by number; runs > 0 replaces the number
// of boots of the ones timed over several.
func pickScenarios(only string, runs int) ([]*scenario, error) {
	var sel []*scenario
	for _, s := range scenarios {
		if only != "" && !contains(strings.Split(only, ","), strconv.Itoa(s.id)) {
			continue
		}
		c := *s
		if runs > 0 && c.runs > 1 {
			c.runs = runs
		}
		sel = append(sel, &c)
	}
	if len(sel) == 0 {
		return nil, fmt.Errorf("no scenario numbered %s", only)
	}
	return sel, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.TrimSpace(x) == s {
			return true
		}
	}
	return false
}

// runAll runs the scenarios on each machine, one VM at a time (one boot
// takes about a core), prints a line per boot and the measurements, and
// returns the results and how many failed.
func runAll(e *env, ms []machine, sel []*scenario, w io.Writer) (results []*result, failed int) {
	skipped := 0
	start := time.Now()
	fmt.Fprintf(w, "vm: kernel %s, initramfs %s, QEMU TCG\n", e.kernel.release, e.initrd)
	for _, m := range ms {
		for _, s := range sel {
			if !s.on(m.name) {
				continue
			}
			if why := e.unmet(s); why != "" {
				skipped++
				fmt.Fprintf(w, "SKIP %-8s %d %-18s %s\n", m.name, s.id, s.name, why)
				continue
			}
			for i := 1; i <= s.runs; i++ {
				r := e.runScenario(s, m, i)
				results = append(results, r)
				verdict := "PASS"
				err := r.verify()
				if err != nil {
					verdict = "FAIL"
					failed++
				}
				fmt.Fprintf(w, "%s %-8s %d %-18s run %d/%d  first line %s, workload %s, %s → exit %s\n",
					verdict, m.name, s.id, s.name, i, s.runs, fmtDur(r.firstLine), fmtDur(r.workload), s.trigger, fmtDur(r.triggerToExit()))
				if err != nil {
					fmt.Fprintf(w, "%s\n  console and QEMU's stderr: %s\n", indent(err.Error(), "    "), r.dir)
					if len(r.hostLog) > 0 {
						fmt.Fprintf(w, "  the host side saw:\n%s\n", indent(strings.Join(r.hostLog, "\n"), "    "))
					}
				}
				for _, n := range r.notes {
					fmt.Fprintf(w, "    note: %s\n", n)
				}
			}
		}
	}
	writeReport(w, results)
	fmt.Fprintf(w, "\nvm-test took %s\nvm-test: %d passed, %d failed, %d skipped\n",
		time.Since(start).Round(time.Second), len(results)-failed, failed, skipped)
	return results, failed
}

// demo boots one VM with the demo process tree as its workload, presses the
// power button a second after the workload started, and prints the console
// as it comes, vminit's timeline and the host's.
func demo(e *env, m machine, w io.Writer) int {
	s := &scenario{id: 0, name: "demo", runs: 1, trigger: byPowerButton, settle: time.Second,
		params:   []string{"vminit.grace=1s"},
		modules:  []string{"button", "evdev"},
		workload: []string{"/init", "_demo", "tree"},
		command:  "poweroff", reason: "guest-shutdown", source: "power_button"}
	fmt.Fprintf(w, "vm demo: %s, kernel %s, vminit as /init; the workload is vminit's demo tree\n"+
		"(3 workers, a SIGTERM ignorer, a stopped process, a daemon); the host presses the\n"+
		"power button (QMP system_powerdown) a second after the workload starts; grace 1s.\n\n", m.name, e.kernel.release)
	fmt.Fprintf(w, "  host time | console\n")
	r := &result{s: s, machine: m.name, run: 1, dir: filepath.Join(e.cache, "runs", m.name+"-demo")}
	r.err = e.drive(r, m, w)
	fmt.Fprintln(w)
	if r.tl.Trigger != 0 {
		fmt.Fprintln(w, "guest timeline (vminit's events, guest clock):")
		var b strings.Builder
		r.tl.WriteSummary(&b)
		fmt.Fprintln(w, indent(b.String(), "  "))
	}
	writeHostTimeline(w, r)
	if err := r.verify(); err != nil {
		fmt.Fprintf(w, "\nvm demo: FAILED:\n%s\n  console and QEMU's stderr: %s\n", indent(err.Error(), "    "), r.dir)
		return 1
	}
	return 0
}
