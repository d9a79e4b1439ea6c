package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestVM runs the scenarios on microvm and q35 where QEMU can be set
// up (installing it and fetching the kernel first, as root), and skips, with
// the reason on stderr as well, where it cannot. Each scenario boots once;
// make vm-test boots the timed ones three times.
//
// VMINIT_VM=skip skips them on purpose; VMINIT_VM_RUNS=N boots the timed
// scenarios N times; go test -short skips them.
func TestVM(t *testing.T) {
	skip := func(why string) {
		t.Helper()
		msg := "VM scenarios SKIPPED: " + why
		fmt.Fprintf(os.Stderr, "\n*** %s ***\n\n", msg)
		t.Skip(msg)
	}
	if testing.Short() {
		skip("-short (they boot about 20 VMs under software emulation, two minutes or so)")
	}
	if v := os.Getenv("VMINIT_VM"); v == "skip" || v == "0" {
		skip("VMINIT_VM=" + v)
	}
	e, err := setup(testWriter{t})
	var se *setupError
	if errors.As(err, &se) {
		skip(se.msg)
	}
	if err != nil {
		t.Fatal(err)
	}
	runs := 1
	if n, err := strconv.Atoi(os.Getenv("VMINIT_VM_RUNS")); err == nil && n > 0 {
		runs = n
	}
	var results []*result
	for _, m := range machines {
		for _, s := range scenarios {
			if !s.on(m.name) {
				continue
			}
			c := *s
			if c.runs > 1 {
				c.runs = runs
			}
			t.Run(fmt.Sprintf("%s/%d-%s", m.name, c.id, c.name), func(t *testing.T) {
				if why := e.unmet(&c); why != "" {
					t.Skip(why)
				}
				for i := 1; i <= c.runs; i++ {
					r := e.runScenario(&c, m, i)
					results = append(results, r)
					if err := r.verify(); err != nil {
						t.Errorf("run %d: %v\nconsole and QEMU's stderr: %s", i, err, r.dir)
						continue
					}
					for _, n := range r.notes {
						t.Logf("run %d: note: %s", i, n)
					}
					t.Logf("run %d: first line %s, workload %s, %s → QEMU exit %s", i,
						fmtDur(r.firstLine), fmtDur(r.workload), c.trigger, fmtDur(r.triggerToExit()))
				}
			})
		}
	}
	var b strings.Builder
	writeReport(&b, results)
	t.Log(b.String())
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
