package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// cgroups holds a cgroup v2 directory of the benchmark's own. Each run gets
// run-SEQ/ with two children: init, where PID 1 starts (and stays alone),
// and work, where the worker moves itself before it forks. PID 1's CPU time
// is then init's cpu.stat usage_usec, which counts every thread of PID 1 and
// nothing else, to the microsecond: /proc/PID/stat counts clock ticks (10 ms).
type cgroups struct{ dir string }

// newCgroups creates the benchmark's cgroup under the cgroup v2 mount.
func newCgroups() (*cgroups, error) {
	mnt, err := cgroup2Mount()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(mnt, fmt.Sprintf("vminit-bench-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	return &cgroups{dir: dir}, nil
}

// cgroup2Mount finds where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup,
// or /sys/fs/cgroup/unified on hybrid systems).
func cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		for i, x := range fields {
			if x == "-" && i+1 < len(fields) && fields[i+1] == "cgroup2" {
				return fields[4], nil
			}
		}
	}
	return "", errors.New("no cgroup v2 hierarchy is mounted")
}

// runCgroup is one run's pair of cgroups.
type runCgroup struct {
	dir  string
	init *os.File // open directory, for clone3's CLONE_INTO_CGROUP
}

// run creates run-SEQ/{init,work} and lets uid (the sandbox's root on the
// host) move its own processes from init to work: that takes write access to
// cgroup.procs of work and of their common parent.
func (c *cgroups) run(seq, uid, gid int) (r *runCgroup, err error) {
	r = &runCgroup{dir: filepath.Join(c.dir, fmt.Sprintf("run-%d", seq))}
	defer func() {
		if err != nil {
			r.remove()
		}
	}()
	for _, d := range []string{r.dir, r.path("init"), r.path("work")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
	}
	for _, f := range []string{r.path("cgroup.procs"), r.path("work", "cgroup.procs")} {
		if err := os.Chown(f, uid, gid); err != nil {
			return nil, err
		}
	}
	if r.init, err = os.OpenFile(r.path("init"), os.O_RDONLY|unix.O_DIRECTORY, 0); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *runCgroup) path(elem ...string) string {
	return filepath.Join(append([]string{r.dir}, elem...)...)
}

// workProcs is the file the worker writes "0" to, to move itself.
func (r *runCgroup) workProcs() string { return r.path("work", "cgroup.procs") }

// usage returns the CPU time of everything that ran in init: PID 1.
func (r *runCgroup) usage() int64 {
	b, err := os.ReadFile(r.path("init", "cpu.stat"))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "usage_usec "); ok {
			us, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return -1
			}
			return us * 1000
		}
	}
	return -1
}

// remove removes the run's cgroups; they must be empty (a cgroup is busy
// for a moment after its last process is reaped).
func (r *runCgroup) remove() {
	if r.init != nil {
		r.init.Close()
	}
	for _, d := range []string{r.path("work"), r.path("init"), r.dir} {
		for i := 0; i < 100; i++ {
			err := unix.Rmdir(d)
			if err == nil || err == unix.ENOENT || err != unix.EBUSY {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func (c *cgroups) remove() { _ = unix.Rmdir(c.dir) }
