package shutdown

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vminit/vminit/loop"
)

// A Reaper in a go test binary would steal the statuses of every exec.Cmd the
// binary runs, so the reaper's tests run in a re-executed copy of the test
// binary: TestMain (sequence_linux_test.go) dispatches on this variable.
const childEnv = "VMINIT_REAPER_TEST"

// lossless is what the child reports.
type lossless struct {
	Spawned, Reaped int
	Zombies         int
	Echild          bool
	P50, P99, Max   time.Duration // spawn → reaped
	Err             string
}

// TestLosslessWakeups: 10,000 short-lived children, 5,000 one after another
// (named: Reaper.Names) and 5,000 in bursts of 200 simultaneous exits (not
// named: wait4(-1)), with GOMAXPROCS ≥ 2 and CPU-bound goroutines in the
// process. The loop has no timeout: every exit
// must be reaped through a SIGCHLD wake-up. A watchdog outside the loop (it
// only looks, never reaps) fails the run when a child of the process stays
// a zombie for seconds; the hang guard catches anything else. No zombie may
// be left.
func TestLosslessWakeups(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: spawns 10,000 processes")
	}
	for _, mode := range []string{"sequential", "bursts"} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"="+mode)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if ctx.Err() != nil {
				t.Fatalf("the reaper hung: a wake-up was lost (progress: %s)", lastLine(stderr.String()))
			}
			if err != nil {
				t.Fatalf("child: %v\n%s", err, stderr.String())
			}
			var res lossless
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatalf("child output %q: %v", out, err)
			}
			if res.Err != "" {
				t.Fatal(res.Err)
			}
			if res.Reaped != res.Spawned || res.Spawned != perMode {
				t.Errorf("reaped %d of %d", res.Reaped, res.Spawned)
			}
			if res.Zombies != 0 || !res.Echild {
				t.Errorf("%d zombies left, ECHILD at the end: %v", res.Zombies, res.Echild)
			}
			t.Logf("%d children, spawn → reaped p50 %v p99 %v max %v", res.Spawned, res.P50, res.P99, res.Max)
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// reaperChild runs in the re-executed test binary.
func reaperChild(mode string) int {
	res := runReaperChild(mode)
	b, _ := json.Marshal(res)
	os.Stdout.Write(b)
	return 0
}

func runReaperChild(mode string) (res lossless) {
	// Two CPU-bound goroutines, and Ps to spare so that the loop is not
	// starved of one: they slow the bridge and must not break it.
	runtime.GOMAXPROCS(max(2, runtime.NumCPU()) + 2)
	stop := make(chan struct{})
	defer close(stop)
	for range 2 {
		go func() {
			x := 0
			for {
				select {
				case <-stop:
					return
				default:
					for i := 0; i < 1e5; i++ {
						x += i
					}
				}
			}
		}()
	}
	go watchdog(stop)

	l, err := loop.New()
	if err != nil {
		res.Err = err.Error()
		return res
	}
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, syscall.SIGCHLD)
	r := NewReaper()
	r.Names = mode == "sequential"
	spawned := map[int]time.Time{}
	var lat []time.Duration
	const total, burst = perMode, 200
	devnull, _ := os.Open(os.DevNull)
	spawn := func(stdin uintptr, argv ...string) {
		pid, err := syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{Files: []uintptr{stdin, devnull.Fd(), devnull.Fd()}})
		if err != nil {
			res.Err = err.Error()
			l.Close()
			return
		}
		spawned[pid] = time.Now()
		res.Spawned++
	}
	var next func()
	switch mode {
	case "sequential":
		next = func() { spawn(devnull.Fd(), "/bin/true") }
	case "bursts":
		next = func() {
			var p [2]int
			if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
				res.Err = err.Error()
				l.Close()
				return
			}
			for range burst {
				spawn(uintptr(p[0]), "/bin/cat")
			}
			unix.Close(p[0])
			unix.Close(p[1]) // EOF: all 200 exit at once
		}
	}
	r.OnExit = func(e Exit) {
		t0, ok := spawned[e.PID]
		if !ok {
			res.Err = fmt.Sprintf("reaped unknown pid %d", e.PID)
			return
		}
		delete(spawned, e.PID)
		if r.Names && e.Comm != "true" {
			res.Err = fmt.Sprintf("reaped %d named %q, want true", e.PID, e.Comm)
		}
		lat = append(lat, time.Since(t0))
		res.Reaped++
	}
	r.OnDrained = func(bool) {
		if len(spawned) > 0 {
			return
		}
		if res.Spawned == total {
			l.Close()
			return
		}
		next()
	}
	if err := l.Signals(sigs, func(s unix.Signal) {
		if s == unix.SIGCHLD {
			r.Reap()
		}
	}); err != nil {
		res.Err = err.Error()
		return res
	}
	next()
	if err := l.Run(); err != nil {
		res.Err = err.Error()
	}
	res.Zombies = zombies()
	_, err = unix.Wait4(-1, nil, unix.WNOHANG, nil)
	res.Echild = err == unix.ECHILD
	slices.Sort(lat)
	if n := len(lat); n > 0 {
		res.P50, res.P99, res.Max = lat[n/2], lat[n*99/100], lat[n-1]
	}
	return res
}

// perMode is the number of children of each mode.
const perMode = 5000

// watchdog exits the process if a zombie child outlives two looks two
// seconds apart: its SIGCHLD wake-up was lost. It never reaps.
func watchdog(stop <-chan struct{}) {
	seen := map[int]bool{}
	for {
		select {
		case <-stop:
			return
		case <-time.After(2 * time.Second):
		}
		now := map[int]bool{}
		for _, pid := range zombiePIDs() {
			if seen[pid] {
				fmt.Fprintf(os.Stderr, "lost wake-up: child %d has been a zombie for 2s\n", pid)
				os.Exit(3)
			}
			now[pid] = true
		}
		seen = now
	}
}

func zombies() int { return len(zombiePIDs()) }

// zombiePIDs lists this process's children that are zombies.
func zombiePIDs() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if st, err := parseStat(string(b)); err == nil && st.ppid == os.Getpid() && st.state == 'Z' {
			pids = append(pids, st.pid)
		}
	}
	return pids
}
