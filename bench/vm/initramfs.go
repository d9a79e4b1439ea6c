package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/vminit/vminit/internal/kmod"
)

// guestModules are the modules the initramfs carries, with their
// dependencies: the virtio transports of both machines (mmio for microvm, pci
// for q35), the disk, virtio-serial (the control channel), the ACPI power
// button and evdev, and AF_VSOCK with its loopback transport. Each VM's
// command line (vminit.modules) says which of them to load.
var guestModules = []string{
	"virtio_mmio", "virtio_pci", "virtio_blk", "virtio_console",
	"button", "evdev",
	"vsock", "vsock_loopback", "vmw_vsock_virtio_transport",
}

// guestBinaries are built from this repository into the image: path in the
// image, package. Packages that do not exist (yet) are left out.
var guestBinaries = []struct{ dst, pkg string }{
	{"init", "cmd/vminit"},
	{"bin/testproc", "internal/testproc"},
	{"bin/vminitctl", "cmd/vminitctl"},
}

// buildInitramfs builds the binaries and writes the initramfs: vminit as
// /init, the test workloads in /bin, /dev/console, and the modules with a
// modules.dep that lists only them.
func (e *env) buildInitramfs() error {
	out := filepath.Join(e.cache, "initramfs.cpio")
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	defer f.Close()
	c := newCPIO(f)

	dirs := map[string]bool{}
	mkdir := func(p string) {
		var parts []string
		for _, part := range strings.Split(p, "/") {
			parts = append(parts, part)
			d := strings.Join(parts, "/")
			if !dirs[d] {
				dirs[d] = true
				c.Dir(d, 0o755)
			}
		}
	}
	for _, d := range []string{"dev", "proc", "sys", "run", "mnt", "bin", "root"} {
		mkdir(d)
	}
	c.Dir("tmp", 0o1777)
	// The kernel opens /dev/console for init before init can mount
	// devtmpfs: an initramfs without it starts init with no descriptors,
	// and then the Go runtime opens /dev/null in their place, or exits
	// with status 2 (a kernel panic for PID 1) if there is none.
	c.CharDev("dev/console", 0o600, 5, 1)
	c.CharDev("dev/null", 0o666, 1, 3)

	for _, b := range guestBinaries {
		if _, err := os.Stat(filepath.Join(e.repo, b.pkg)); err != nil {
			continue
		}
		bin, err := e.build(b.pkg, path.Base(b.dst))
		if err != nil {
			return err
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			return err
		}
		c.File(b.dst, 0o755, data)
	}

	ix, err := kmod.ReadIndex(e.kernel.modDir)
	if err != nil {
		return err
	}
	plan := ix.Plan(guestModules)
	if len(plan.Missing) > 0 {
		return fmt.Errorf("vm: kernel %s has no module %s", e.kernel.release, strings.Join(plan.Missing, ", "))
	}
	modRoot := "lib/modules/" + e.kernel.release
	mkdir(modRoot)
	keep := map[string]bool{}
	for _, m := range plan.Load {
		keep[m.Path] = true
		data, err := os.ReadFile(filepath.Join(e.kernel.modDir, m.Path))
		if err != nil {
			return err
		}
		mkdir(path.Dir(modRoot + "/" + m.Path))
		c.File(modRoot+"/"+m.Path, 0o644, data)
	}
	dep, err := filterDep(filepath.Join(e.kernel.modDir, "modules.dep"), keep)
	if err != nil {
		return err
	}
	c.File(modRoot+"/modules.dep", 0o644, dep)
	if b, err := os.ReadFile(filepath.Join(e.kernel.modDir, "modules.builtin")); err == nil {
		c.File(modRoot+"/modules.builtin", 0o644, b)
	}
	if err := c.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	e.initrd = out
	return e.buildNoConsole()
}

// buildNoConsole writes a variant of the initramfs whose /dev/console the
// kernel cannot open: a second archive appended to the first (the kernel
// unpacks both, in order) replaces the node with a directory. PID 1 then
// starts with no console ("Warning: unable to open an initial console.").
func (e *env) buildNoConsole() error {
	main, err := os.ReadFile(e.initrd)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	b.Write(main)
	c := newCPIO(&b)
	c.Dir("dev", 0o755)
	c.Dir("dev/console", 0o755)
	if err := c.Close(); err != nil {
		return err
	}
	out := filepath.Join(e.cache, "initramfs-noconsole.cpio")
	if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
		return err
	}
	e.initrdNoConsole = out
	return nil
}

// filterDep returns the lines of the modules.dep at file whose module is in
// keep: the dependency lists stay complete, since keep is closed under them.
func filterDep(file string, keep map[string]bool) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		mod, _, _ := strings.Cut(sc.Text(), ":")
		if keep[strings.TrimSpace(mod)] {
			out.WriteString(sc.Text())
			out.WriteByte('\n')
		}
	}
	return out.Bytes(), sc.Err()
}
