package main

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// describeMachine says where the benchmark runs.
func describeMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadBefore: loadavg(), Processes: countProcesses()}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	m.CPU = firstField("/proc/cpuinfo", "model name")
	if kb, err := strconv.ParseInt(strings.TrimSuffix(firstField("/proc/meminfo", "MemTotal"), " kB"), 10, 64); err == nil {
		m.MemoryMiB = kb / 1024
	}
	return m
}

func firstField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func loadavg() (l [3]float64) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l
	}
	f := strings.Fields(string(b))
	for i := 0; i < 3 && i < len(f); i++ {
		l[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return l
}

// countProcesses counts the host's processes: kill(-1) from a namespace's
// init walks all of them, so their number is part of every strategy's cost.
func countProcesses() int {
	d, err := os.Open("/proc")
	if err != nil {
		return 0
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	n := 0
	for _, name := range names {
		if _, err := strconv.Atoi(name); err == nil {
			n++
		}
	}
	return n
}

// Filesystem magic numbers (statfs(2)) worth naming.
var fsNames = map[int64]string{
	0xEF53: "ext4", 0x01021994: "tmpfs", 0x58465342: "xfs", 0x9123683E: "btrfs",
	0x794c7630: "overlay", 0x65735546: "fuse", 0x2FC12FC1: "zfs", 0x6969: "nfs",
}

// dataDir makes the directory for the page cache scenario's file, mode 1777
// so that the sandbox's root can write it, on a disk filesystem if there is
// one: on tmpfs, sync(2) has nothing to write back. It returns the directory
// and its filesystem's name.
func dataDir() (string, string, error) {
	var firstErr error
	for _, parent := range []string{"/var/tmp", os.TempDir()} {
		var st unix.Statfs_t
		if err := unix.Statfs(parent, &st); err != nil {
			continue
		}
		name, ok := fsNames[int64(st.Type)]
		if !ok {
			name = "0x" + strconv.FormatInt(int64(st.Type), 16)
		}
		if name == "tmpfs" && parent != os.TempDir() {
			continue
		}
		dir, err := os.MkdirTemp(parent, "vminit-bench-data-")
		if err != nil {
			firstErr = err
			continue
		}
		if err := os.Chmod(dir, 0o1777); err != nil {
			os.Remove(dir)
			return "", "", err
		}
		return dir, name, nil
	}
	if firstErr == nil {
		firstErr = os.ErrNotExist
	}
	return "", "", firstErr
}
