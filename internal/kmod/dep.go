package kmod

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Module is one loadable module of a modules directory.
type Module struct {
	Name string   // as the kernel names it: "virtio_blk"
	Path string   // relative to the modules directory: "kernel/drivers/block/virtio_blk.ko"
	Deps []string // names of the modules it needs, as modules.dep lists them
}

// Index is what a modules directory says about its modules: the loadable
// ones from modules.dep and the built-in ones from modules.builtin.
type Index struct {
	modules map[string]*Module
	builtin map[string]bool
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{modules: make(map[string]*Module), builtin: make(map[string]bool)}
}

// ReadIndex reads modules.dep and, if present, modules.builtin from dir. The
// index it returns is usable even with an error: it then knows what it
// could read.
func ReadIndex(dir string) (*Index, error) {
	ix := NewIndex()
	if b, err := os.Open(filepath.Join(dir, "modules.builtin")); err == nil {
		err = ix.ParseBuiltin(b)
		b.Close()
		if err != nil {
			return ix, fmt.Errorf("kmod: %s: %w", b.Name(), err)
		}
	}
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return ix, fmt.Errorf("kmod: %w (generate it with depmod -b ROOT RELEASE)", err)
	}
	defer f.Close()
	if err := ix.ParseDep(f); err != nil {
		return ix, fmt.Errorf("kmod: %s: %w", f.Name(), err)
	}
	return ix, nil
}

// ParseDep adds the modules of r, in the format of modules.dep(5):
//
//	kernel/net/vmw_vsock/vsock_loopback.ko: kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko kernel/net/vmw_vsock/vsock.ko
//
// Blank lines and lines starting with # are skipped; a line without a colon
// is an error.
func (ix *Index) ParseDep(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		file, deps, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(file) == "" {
			return fmt.Errorf("modules.dep: line %d: no \"path:\" in %q", n, line)
		}
		m := &Module{Path: strings.TrimSpace(file)}
		m.Name = Name(m.Path)
		for _, d := range strings.Fields(deps) {
			m.Deps = append(m.Deps, Name(d))
		}
		ix.modules[m.Name] = m
	}
	return sc.Err()
}

// ParseBuiltin adds the built-in modules of r, in the format of
// modules.builtin: one path per line.
func (ix *Index) ParseBuiltin(r io.Reader) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && line[0] != '#' {
			ix.builtin[Name(line)] = true
		}
	}
	return sc.Err()
}

// Module returns the loadable module called name ("virtio-blk" and
// "virtio_blk" are the same name).
func (ix *Index) Module(name string) (*Module, bool) {
	m, ok := ix.modules[Normalize(name)]
	return m, ok
}

// Builtin reports whether the module called name is built into the kernel.
func (ix *Index) Builtin(name string) bool { return ix.builtin[Normalize(name)] }

// Name returns the name of the module in file p: the base name without
// ".ko" (and a compression suffix), with '-' as '_', as the kernel names it.
func Name(p string) string {
	base := path.Base(p)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		base = strings.TrimSuffix(base, ext)
	}
	return Normalize(strings.TrimSuffix(base, ".ko"))
}

// Normalize writes a module name as the kernel does: '-' and '_' are the
// same character in module names, and the kernel uses '_'.
func Normalize(name string) string { return strings.ReplaceAll(strings.TrimSpace(name), "-", "_") }

// Plan is what loading a list of modules takes.
type Plan struct {
	Load    []*Module // every module to load, each once, dependencies first
	Builtin []string  // requested modules built into the kernel: nothing to do
	Missing []string  // requested modules the index does not know
}

// Plan orders the requested modules and everything they depend on so that
// each module comes after its dependencies. Dependencies are taken from the
// end of each modules.dep line first, as modprobe does, so that the order is
// the one modprobe would use. A dependency the index does not know is listed
// as missing; cycles (which depmod refuses to write) are broken arbitrarily
// but never loop.
func (ix *Index) Plan(names []string) Plan {
	var p Plan
	state := make(map[string]int) // 0 new, 1 in progress, 2 done
	seen := make(map[string]bool) // names already reported
	var visit func(name string)
	visit = func(name string) {
		if state[name] != 0 {
			return
		}
		state[name] = 1
		m, ok := ix.modules[name]
		if !ok {
			state[name] = 2
			if !seen[name] {
				seen[name] = true
				if ix.builtin[name] {
					p.Builtin = append(p.Builtin, name)
				} else {
					p.Missing = append(p.Missing, name)
				}
			}
			return
		}
		for i := len(m.Deps) - 1; i >= 0; i-- {
			visit(m.Deps[i])
		}
		state[name] = 2
		p.Load = append(p.Load, m)
	}
	for _, n := range names {
		if n = Normalize(n); n != "" {
			visit(n)
		}
	}
	return p
}

// ParseList splits a comma-separated list of module names, as
// vminit.modules takes it, dropping empty entries.
func ParseList(s string) []string {
	var names []string
	for _, n := range strings.Split(s, ",") {
		if n = Normalize(n); n != "" {
			names = append(names, n)
		}
	}
	return names
}
