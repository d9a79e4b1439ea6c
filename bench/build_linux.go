package main

import (
	"bytes"
	"debug/elf"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// workerSource is the workload, compiled by the harness on the machine it
// runs on: no binary is ever committed.
//
//go:embed workload/worker.c
var workerSource []byte

// bins are the programs a run needs, in a directory that the sandbox's root
// (an unprivileged host uid) can search: PID 1 executes the worker by path.
type bins struct {
	dir, vminit, vminitB, strategy, worker string
	sizes                                  Binaries
}

// build builds vminit as make build does (static, stripped), the strategy
// program the same way, and the worker with the C compiler.
func build() (b *bins, err error) {
	dir, err := os.MkdirTemp("", "vminit-bench-bin-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	b = &bins{dir: dir, vminit: filepath.Join(dir, "vminit"), strategy: filepath.Join(dir, "strategy"), worker: filepath.Join(dir, "worker")}
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	for pkg, out := range map[string]string{"./cmd/vminit": b.vminit, "./bench/strategy": b.strategy} {
		cmd := exec.Command(goTool(), "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	b.sizes.Commit = commit(root)
	if vminitOverride != "" {
		b.sizes.Commit += " (vminit: " + vminitOverride + ")"
		if err := copyFile(vminitOverride, b.vminit); err != nil {
			return nil, err
		}
	}
	if vminitB == "" {
		b.vminitB = b.vminit
	} else {
		b.vminitB = filepath.Join(dir, "vminit-b")
		if err := copyFile(vminitB, b.vminitB); err != nil {
			return nil, err
		}
	}
	if b.sizes.WorkerStatic, err = compileWorker(dir, b.worker); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		path   string
		size   *int64
		static *bool
	}{{b.vminit, &b.sizes.Vminit, &b.sizes.VminitStatic}, {b.strategy, &b.sizes.Strategy, nil}, {b.worker, &b.sizes.Worker, nil}} {
		st, err := os.Stat(f.path)
		if err != nil {
			return nil, err
		}
		*f.size = st.Size()
		if f.static != nil {
			*f.static = isStatic(f.path)
		}
	}
	return b, nil
}

// compileWorker compiles the worker, statically if the C library allows
// (libc.a), dynamically otherwise: the N processes are forks of it, never
// exec'd, so only the first pays for dynamic linking.
func compileWorker(dir, out string) (static bool, err error) {
	src := filepath.Join(dir, "worker.c")
	if err := os.WriteFile(src, workerSource, 0o644); err != nil {
		return false, err
	}
	defer os.Remove(src)
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "gcc"
	}
	if _, err := exec.LookPath(cc); err != nil {
		return false, fmt.Errorf("the workload is a small C program: %s not found (apt-get install gcc libc6-dev)", cc)
	}
	var firstErr []byte
	for _, static := range []bool{true, false} {
		args := []string{"-O2", "-Wall", "-o", out, src}
		if static {
			args = append([]string{"-static"}, args...)
		}
		b, err := exec.Command(cc, args...).CombinedOutput()
		if err == nil {
			return static, nil
		}
		if firstErr == nil {
			firstErr = b
		}
	}
	return false, fmt.Errorf("%s could not compile the worker:\n%s", cc, firstErr)
}

// isStatic reports whether an ELF file asks for no interpreter and has no
// dynamic section.
func isStatic(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			return false
		}
	}
	return true
}

// moduleRoot is the directory of the module's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command(goTool(), "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(bytes.TrimSpace(out)))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the vminit module: run from the repository")
	}
	return filepath.Dir(mod), nil
}

// goTool is the go command: $GO (as make passes it), or the one on PATH, or
// the toolchain's own.
func goTool() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go" // where the Go release installs it
}

// commit names the checkout the programs are built from: the commit, and
// "+changes" if the work tree differs from it.
func commit(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return ""
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		c += "+changes"
	}
	return c
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o755)
}
