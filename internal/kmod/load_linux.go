package kmod

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// finitModule is finit_module(2); tests replace it, so that no test loads a
// module into the kernel that runs it.
var finitModule = unix.FinitModule

// Dir returns the modules directory of the running kernel,
// /lib/modules/RELEASE, from uname(2).
func Dir() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", os.NewSyscallError("uname", err)
	}
	return filepath.Join("/lib/modules", unix.ByteSliceToString(u.Release[:])), nil
}

// Load loads the modules called names, and their dependencies, from dir
// (see Dir), and returns one Result per module it considered, in the order
// it considered them. It returns an error only when dir has no usable
// modules.dep; the results then report every requested module missing.
// Nothing Load meets stops it: each module is tried unless one of its
// dependencies is missing or failed.
func Load(dir string, names []string) ([]Result, error) {
	ix, err := ReadIndex(dir)
	requested := make(map[string]bool)
	for _, n := range names {
		requested[Normalize(n)] = true
	}
	plan := ix.Plan(names)
	var results []Result
	absent := make(map[string]error) // modules not in the kernel, and why
	for _, n := range plan.Builtin {
		results = append(results, Result{Name: n, Requested: requested[n], Status: Builtin})
	}
	for _, n := range plan.Missing {
		why := fmt.Errorf("not in %s", filepath.Join(dir, "modules.dep"))
		if err != nil {
			why = err
		}
		absent[n] = why
		results = append(results, Result{Name: n, Requested: requested[n], Status: Missing, Err: why})
	}
	for _, m := range plan.Load {
		r := Result{Name: m.Name, Path: filepath.Join(dir, m.Path), Requested: requested[m.Name]}
		var needs []string
		for _, d := range m.Deps {
			if absent[d] != nil {
				needs = append(needs, d)
			}
		}
		if len(needs) > 0 {
			r.Status, r.Err = Skipped, fmt.Errorf("needs %s, not loaded", strings.Join(needs, ", "))
		} else {
			start := time.Now()
			r.Status, r.Err = load(r.Path)
			r.Took = time.Since(start)
		}
		if !r.Status.OK() {
			absent[m.Name] = r.Err
		}
		results = append(results, r)
	}
	return results, err
}

// load loads one module file with finit_module(2). Compressed modules are
// handed to the kernel as they are (MODULE_INIT_COMPRESSED_FILE, Linux 6.4
// with CONFIG_MODULE_DECOMPRESS).
func load(path string) (Status, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return Missing, fmt.Errorf("modules.dep lists %s, but it is not there", path)
	}
	if err != nil {
		return Failed, os.NewSyscallError("open "+path, err)
	}
	defer unix.Close(fd)
	flags := 0
	if !strings.HasSuffix(path, ".ko") {
		flags |= unix.MODULE_INIT_COMPRESSED_FILE
	}
	switch err := finitModule(fd, "", flags); {
	case err == nil:
		return Loaded, nil
	case errors.Is(err, unix.EEXIST):
		return AlreadyLoaded, nil
	default:
		return Failed, os.NewSyscallError("finit_module "+path, err)
	}
}
