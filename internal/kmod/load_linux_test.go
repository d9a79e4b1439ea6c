package kmod

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeFinit stands in for finit_module(2): no test loads a module into the
// kernel that runs it. It records the file behind each descriptor, and the
// flags, and fails as told by the file's content.
type fakeFinit struct{ calls []string }

func (f *fakeFinit) finit(fd int, params string, flags int) error {
	path, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return err
	}
	f.calls = append(f.calls, fmt.Sprintf("%s flags=%d", filepath.Base(path), flags))
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	switch strings.TrimSpace(string(b)) {
	case "EEXIST":
		return unix.EEXIST
	case "ENOEXEC":
		return unix.ENOEXEC
	}
	return nil
}

func withFakeFinit(t *testing.T) *fakeFinit {
	t.Helper()
	f := &fakeFinit{}
	old := finitModule
	finitModule = f.finit
	t.Cleanup(func() { finitModule = old })
	return f
}

// modulesDir writes a modules directory: modules.dep from dep, and each
// file in files with its content (what the fake finit_module answers).
func modulesDir(t *testing.T, dep string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if dep != "" {
		if err := os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte(builtinFixture), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func summary(rs []Result) []string {
	var s []string
	for _, r := range rs {
		s = append(s, r.Name+" "+r.Status.String())
	}
	return s
}

func TestLoad(t *testing.T) {
	f := withFakeFinit(t)
	dir := modulesDir(t, depFixture, map[string]string{
		"kernel/drivers/virtio/virtio.ko":       "",
		"kernel/drivers/virtio/virtio_ring.ko":  "EEXIST",
		"kernel/drivers/block/virtio_blk.ko":    "",
		"kernel/drivers/char/virtio_console.ko": "ENOEXEC",
		"kernel/drivers/acpi/button.ko":         "",
		"kernel/sound/snd-fake.ko.xz":           "",
		// evdev.ko is listed in modules.dep but not there.
	})
	rs, err := Load(dir, []string{"virtio_blk", "virtio-console", "i8042", "nosuch", "button", "evdev", "snd_fake"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"i8042 built in",
		"nosuch missing",
		"snd_missing_dep missing",
		"virtio_ring already loaded",
		"virtio loaded",
		"virtio_blk loaded",
		"virtio_console failed",
		"button loaded",
		"evdev missing",
		"snd_fake skipped",
	}
	if got := summary(rs); !slices.Equal(got, want) {
		t.Errorf("results\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, r := range rs {
		if r.Requested != (r.Name != "virtio_ring" && r.Name != "virtio" && r.Name != "snd_missing_dep") {
			t.Errorf("%s: requested=%v", r.Name, r.Requested)
		}
		if !r.Status.OK() && r.Err == nil {
			t.Errorf("%s %s without a reason", r.Name, r.Status)
		}
	}
	if rs[6].Err == nil || !errors.Is(rs[6].Err, unix.ENOEXEC) {
		t.Errorf("virtio_console: err %v, want ENOEXEC", rs[6].Err)
	}
	if !strings.Contains(rs[9].Err.Error(), "snd_missing_dep, evdev") {
		t.Errorf("snd_fake skipped for %v; want both absent dependencies named", rs[9].Err)
	}
	wantCalls := []string{"virtio_ring.ko flags=0", "virtio.ko flags=0", "virtio_blk.ko flags=0", "virtio_console.ko flags=0", "button.ko flags=0"}
	if !slices.Equal(f.calls, wantCalls) {
		t.Errorf("finit_module calls %v, want %v", f.calls, wantCalls)
	}
}

func TestLoadCompressed(t *testing.T) {
	f := withFakeFinit(t)
	dir := modulesDir(t, "kernel/a.ko.zst:\n", map[string]string{"kernel/a.ko.zst": ""})
	rs, err := Load(dir, []string{"a"})
	if err != nil || len(rs) != 1 || rs[0].Status != Loaded {
		t.Fatalf("%v %v", summary(rs), err)
	}
	if want := fmt.Sprintf("a.ko.zst flags=%d", unix.MODULE_INIT_COMPRESSED_FILE); f.calls[0] != want {
		t.Errorf("call %q, want %q", f.calls[0], want)
	}
}

func TestLoadNoModulesDep(t *testing.T) {
	f := withFakeFinit(t)
	dir := modulesDir(t, "", nil)
	rs, err := Load(dir, []string{"evdev", "i8042"})
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err %v, want a missing modules.dep", err)
	}
	if got, want := summary(rs), []string{"i8042 built in", "evdev missing"}; !slices.Equal(got, want) {
		t.Errorf("results %v, want %v", got, want)
	}
	if !strings.Contains(rs[1].Err.Error(), "depmod") {
		t.Errorf("the reason does not say how to fix it: %v", rs[1].Err)
	}
	if len(f.calls) != 0 {
		t.Errorf("finit_module called: %v", f.calls)
	}
}

func TestDir(t *testing.T) {
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	var u unix.Utsname
	_ = unix.Uname(&u)
	if !strings.HasPrefix(dir, "/lib/modules/") || filepath.Base(dir) != unix.ByteSliceToString(u.Release[:]) {
		t.Errorf("Dir() = %q", dir)
	}
}
