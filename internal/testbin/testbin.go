// Package testbin builds the binaries that end-to-end tests run (vminit,
// testproc) into a directory the sandbox's root can reach, and gives tests
// directories it can write. For tests only.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	once    sync.Once
	dir     string
	errOnce error
)

// Binaries returns the paths of vminit and testproc, built once per test
// binary (CGO_ENABLED=0, like make build) into a mode-0755 directory: go
// test's own directories are mode 0700, which the sandbox's root (host uid
// 65534) cannot search. The directory is removed by Cleanup.
func Binaries(t testing.TB) (vminit, testproc string) {
	t.Helper()
	once.Do(func() { dir, errOnce = build() })
	if errOnce != nil {
		t.Fatal(errOnce)
	}
	return filepath.Join(dir, "vminit"), filepath.Join(dir, "testproc")
}

// Cleanup removes the binaries; call it from TestMain after m.Run.
func Cleanup() {
	if dir != "" {
		os.RemoveAll(dir)
	}
}

func build() (string, error) {
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "..", "..")
	d, err := os.MkdirTemp("", "vminit-bin-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(d, 0o755); err != nil {
		return "", err
	}
	for name, pkg := range map[string]string{"vminit": "./cmd/vminit", "testproc": "./internal/testproc"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(d, name), pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			os.RemoveAll(d)
			return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	return d, nil
}

// NeedRoot skips a test that creates namespaces as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the sandbox maps its root to uid 65534, which only root may do (run make test as root)")
	}
}

// SharedDir returns a fresh directory that the sandbox's root may write
// (mode 1777, under /tmp: t.TempDir's parents are mode 0700), removed when
// the test ends.
func SharedDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "vminit-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o1777); err != nil {
		t.Fatal(err)
	}
	return d
}

// FirstChild waits for process pid to have a child and returns its pid, or 0
// after limit. A sandbox's first child is its PID 1.
func FirstChild(pid int, limit time.Duration) int {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(50 * time.Microsecond) {
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		for _, task := range tasks {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
			var child int
			if _, err := fmt.Sscan(string(b), &child); err == nil {
				return child
			}
		}
	}
	return 0
}

// Dead reports whether process pid has ended: gone, or a zombie.
func Dead(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err != nil || strings.Contains(string(b), ") Z ")
}

// FDs lists the open descriptors of process pid, as "fd -> target".
func FDs(pid int) []string {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	var fds []string
	for _, e := range ents {
		target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
		fds = append(fds, e.Name()+" -> "+target)
	}
	return fds
}
