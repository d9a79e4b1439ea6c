package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// env is a host ready to boot VMs: tools, a kernel, the binaries under test
// and an initramfs.
type env struct {
	repo   string // the repository's root
	cache  string // repo/.cache/vm: kernels, images, run directories (git ignores .cache)
	qemu   string
	tscKHz int // the host's TSC frequency, for microvm's tsc_early_khz
	kernel kernel
	initrd string
	// initrdNoConsole is initrd with a /dev/console that cannot be opened.
	initrdNoConsole string
	log             io.Writer // progress messages
}

// kernel is an unpacked Debian kernel package.
type kernel struct {
	release string // "6.1.0-57-cloud-amd64"
	vmlinuz string
	modDir  string // .../lib/modules/RELEASE, with modules.dep
}

// setupError is a host that cannot boot the VMs: the tests skip with its
// message, which says why and what would fix it. Any other setup error is a
// bug of the harness or of the code under test, and fails.
type setupError struct{ msg string }

func (e *setupError) Error() string { return e.msg }

func cannot(format string, a ...any) error { return &setupError{fmt.Sprintf(format, a...)} }

// aptPackages names the Debian packages that hold the tools, by tool.
var aptPackages = map[string]string{
	"qemu-system-x86_64": "qemu-system-x86",
	"depmod":             "kmod",
	"mkfs.ext4":          "e2fsprogs",
	"e2fsck":             "e2fsprogs",
	"dumpe2fs":           "e2fsprogs",
	"debugfs":            "e2fsprogs",
	"cpio":               "cpio",
}

// metaPackage is Debian's cloud kernel metapackage; it holds no kernel but
// depends on the versioned package that does.
const metaPackage = "linux-image-cloud-amd64"

// setup finds (or makes) everything a VM needs. Slow steps happen once: the
// kernel stays in the cache; binaries and the initramfs are rebuilt each
// time (a few seconds), so that they are the code under test.
func setup(log io.Writer) (*env, error) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		return nil, cannot("the VM tests need linux/amd64 (QEMU x86_64 with a Debian amd64 kernel); this is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	repo, err := repoRoot()
	if err != nil {
		return nil, err
	}
	e := &env{repo: repo, cache: filepath.Join(repo, ".cache", "vm"), log: log}
	if err := os.MkdirAll(e.cache, 0o755); err != nil {
		return nil, err
	}
	if err := e.tools(); err != nil {
		return nil, err
	}
	if e.tscKHz, err = tscKHz(); err != nil {
		return nil, err
	}
	if e.kernel, err = e.fetchKernel(); err != nil {
		return nil, err
	}
	if err := e.buildInitramfs(); err != nil {
		return nil, err
	}
	return e, nil
}

// repoRoot walks up from the working directory to go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("vm: not inside the vminit repository (no go.mod above the working directory)")
		}
		dir = parent
	}
}

// lookTool finds a tool in PATH or in the sbin directories, which a non-login
// root shell may lack in PATH.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// tools makes sure the host tools are there, installing them with apt-get
// when root.
func (e *env) tools() error {
	var missing []string
	pkgs := map[string]bool{}
	for _, tool := range sortedKeys(aptPackages) {
		if _, err := lookTool(tool); err != nil {
			missing = append(missing, tool)
			pkgs[aptPackages[tool]] = true
		}
	}
	if len(missing) > 0 {
		list := sortedKeys(pkgs)
		if os.Geteuid() != 0 {
			return cannot("missing %s; as root: apt-get install %s", strings.Join(missing, ", "), strings.Join(list, " "))
		}
		if _, err := lookTool("apt-get"); err != nil {
			return cannot("missing %s, and no apt-get to install %s", strings.Join(missing, ", "), strings.Join(list, " "))
		}
		fmt.Fprintf(e.log, "vm: installing %s with apt-get\n", strings.Join(list, " "))
		if err := aptUpdate(); err != nil {
			return cannot("apt-get update: %v", err)
		}
		args := append([]string{"install", "-y", "-q", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300"}, list...)
		if out, err := run(10*time.Minute, "", "apt-get", args...); err != nil {
			return cannot("apt-get install %s: %v\n%s", strings.Join(list, " "), err, tail(out, 20))
		}
	}
	var err error
	if e.qemu, err = lookTool("qemu-system-x86_64"); err != nil {
		return cannot("qemu-system-x86_64 is still missing after installing qemu-system-x86")
	}
	return nil
}

var aptUpdated bool

func aptUpdate() error {
	if aptUpdated {
		return nil
	}
	out, err := run(10*time.Minute, "", "apt-get", "update", "-q", "-o", "DPkg::Lock::Timeout=300")
	if err != nil {
		return fmt.Errorf("%v\n%s", err, tail(out, 20))
	}
	aptUpdated = true
	return nil
}

// tscKHz reads the TSC frequency that microvm under TCG needs on the kernel
// command line (tsc_early_khz): without it the guest hangs calibrating.
func tscKHz() (int, error) {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return 0, cannot("cannot read /proc/cpuinfo for the TSC frequency: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "cpu MHz" {
			mhz, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil && mhz > 0 {
				return int(math.Round(mhz * 1000)), nil
			}
		}
	}
	return 0, cannot("no \"cpu MHz\" in /proc/cpuinfo: cannot give microvm its TSC frequency")
}

var dependsRE = regexp.MustCompile(`Depends:\s*(linux-image-(\S+-cloud-amd64))\b`)

// fetchKernel returns the cloud kernel that the metapackage depends on now,
// downloading and unpacking it into the cache if it is not there. Offline,
// the newest cached kernel does.
func (e *env) fetchKernel() (kernel, error) {
	dir := filepath.Join(e.cache, "kernel")
	pkg, release, err := resolveKernel()
	if err != nil {
		if k, ok := newestCached(dir); ok {
			fmt.Fprintf(e.log, "vm: cannot ask apt for the current kernel (%v); using the cached %s\n", err, k.release)
			return k, nil
		}
		return kernel{}, err
	}
	k := cachedKernel(dir, release)
	if _, err := os.Stat(k.vmlinuz); err == nil {
		if _, err := os.Stat(filepath.Join(k.modDir, "modules.dep")); err == nil {
			return k, nil
		}
	}
	fmt.Fprintf(e.log, "vm: fetching %s (apt-get download) into %s\n", pkg, dir)
	tmp := filepath.Join(dir, release+".tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return kernel{}, err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return kernel{}, err
	}
	if out, err := run(10*time.Minute, tmp, "apt-get", "download", "-q", pkg); err != nil {
		return kernel{}, cannot("apt-get download %s: %v\n%s", pkg, err, tail(out, 20))
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return kernel{}, fmt.Errorf("vm: apt-get download %s left %d .deb files in %s", pkg, len(debs), tmp)
	}
	root := filepath.Join(tmp, "root")
	if out, err := run(5*time.Minute, "", "dpkg", "-x", debs[0], root); err != nil {
		return kernel{}, fmt.Errorf("vm: dpkg -x %s: %v\n%s", debs[0], err, tail(out, 20))
	}
	// The package ships no modules.dep; depmod writes it (and
	// modules.builtin comes with the package).
	if out, err := run(5*time.Minute, "", "depmod", "-b", root, release); err != nil {
		return kernel{}, fmt.Errorf("vm: depmod -b %s %s: %v\n%s", root, release, err, tail(out, 20))
	}
	os.Remove(debs[0])
	final := filepath.Join(dir, release)
	if err := os.RemoveAll(final); err != nil {
		return kernel{}, err
	}
	if err := os.Rename(root, final); err != nil {
		return kernel{}, err
	}
	os.RemoveAll(tmp)
	k = cachedKernel(dir, release)
	if _, err := os.Stat(k.vmlinuz); err != nil {
		return kernel{}, fmt.Errorf("vm: %s has no %s", pkg, k.vmlinuz)
	}
	return k, nil
}

// resolveKernel asks apt which versioned package the metapackage depends on.
func resolveKernel() (pkg, release string, err error) {
	if _, err := lookTool("apt-cache"); err != nil {
		return "", "", cannot("no apt-cache: cannot find Debian's cloud kernel (%s)", metaPackage)
	}
	ask := func() (string, string, bool) {
		out, err := run(time.Minute, "", "apt-cache", "depends", metaPackage)
		if err != nil {
			return "", "", false
		}
		m := dependsRE.FindSubmatch(out)
		if m == nil {
			return "", "", false
		}
		return string(m[1]), string(m[2]), true
	}
	if pkg, release, ok := ask(); ok {
		return pkg, release, nil
	}
	if os.Geteuid() == 0 {
		if err := aptUpdate(); err != nil {
			return "", "", cannot("apt-get update: %v", err)
		}
		if pkg, release, ok := ask(); ok {
			return pkg, release, nil
		}
	}
	return "", "", cannot("apt does not know %s (not a Debian host, or apt-get update needed as root)", metaPackage)
}

func cachedKernel(dir, release string) kernel {
	root := filepath.Join(dir, release)
	return kernel{
		release: release,
		vmlinuz: filepath.Join(root, "boot", "vmlinuz-"+release),
		modDir:  filepath.Join(root, "lib", "modules", release),
	}
}

func newestCached(dir string) (kernel, bool) {
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, en := range entries {
		if en.IsDir() && !strings.HasSuffix(en.Name(), ".tmp") {
			names = append(names, en.Name())
		}
	}
	sort.Strings(names)
	for i := len(names) - 1; i >= 0; i-- {
		k := cachedKernel(dir, names[i])
		if _, err := os.Stat(filepath.Join(k.modDir, "modules.dep")); err == nil {
			return k, true
		}
	}
	return kernel{}, false
}

// goTool returns the go command: the one in PATH, else the one of
// $GOROOT or /usr/local/go.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	for _, root := range []string{os.Getenv("GOROOT"), "/usr/local/go"} {
		if p := filepath.Join(root, "bin", "go"); root != "" && exists(p) {
			return p
		}
	}
	return "go"
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// build builds a static binary of pkg (relative to the repository) into the
// cache and returns its path.
func (e *env) build(pkg, name string) (string, error) {
	out := filepath.Join(e.cache, "bin", name)
	cmd := exec.Command(goTool(), "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./"+pkg)
	cmd.Dir = e.repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("vm: go build ./%s: %v\n%s", pkg, err, b)
	}
	return out, nil
}

// run runs a command with a deadline and returns its combined output.
func run(limit time.Duration, dir, name string, args ...string) ([]byte, error) {
	path, err := lookTool(name)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.Bytes(), err
	case <-time.After(limit):
		_ = cmd.Process.Kill()
		<-done
		return out.Bytes(), fmt.Errorf("%s: still running after %v: killed", name, limit)
	}
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
