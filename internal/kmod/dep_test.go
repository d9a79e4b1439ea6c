package kmod

import (
	"slices"
	"strings"
	"testing"
)

// depFixture is a piece of the modules.dep that depmod writes for Debian's
// 6.1 cloud kernel, with one line reordered and one made up (sound) to cover
// shared and chained dependencies.
const depFixture = `kernel/drivers/acpi/button.ko:
kernel/drivers/input/evdev.ko:
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/char/virtio_console.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/net/vmw_vsock/vsock.ko:
kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko: kernel/net/vmw_vsock/vsock.ko
kernel/net/vmw_vsock/vsock_loopback.ko: kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko kernel/net/vmw_vsock/vsock.ko
kernel/arch/x86/events/intel/intel-uncore.ko:
kernel/sound/snd-fake.ko.xz: kernel/sound/snd-missing-dep.ko kernel/drivers/input/evdev.ko

# a comment
`

const builtinFixture = "kernel/drivers/input/serio/i8042.ko\nkernel/fs/ext4/ext4.ko\n"

func fixture(t *testing.T) *Index {
	t.Helper()
	ix := NewIndex()
	if err := ix.ParseDep(strings.NewReader(depFixture)); err != nil {
		t.Fatal(err)
	}
	if err := ix.ParseBuiltin(strings.NewReader(builtinFixture)); err != nil {
		t.Fatal(err)
	}
	return ix
}

func TestParseDep(t *testing.T) {
	ix := fixture(t)
	m, ok := ix.Module("vsock-loopback")
	if !ok {
		t.Fatal("vsock_loopback not found under its dashed name")
	}
	if m.Path != "kernel/net/vmw_vsock/vsock_loopback.ko" {
		t.Errorf("path %q", m.Path)
	}
	if want := []string{"vmw_vsock_virtio_transport_common", "vsock"}; !slices.Equal(m.Deps, want) {
		t.Errorf("deps %v, want %v", m.Deps, want)
	}
	if _, ok := ix.Module("intel_uncore"); !ok {
		t.Error("intel-uncore.ko is not module intel_uncore")
	}
	if m, ok := ix.Module("snd_fake"); !ok || m.Path != "kernel/sound/snd-fake.ko.xz" {
		t.Errorf("compressed module: %+v %v", m, ok)
	}
	if !ix.Builtin("i8042") || ix.Builtin("evdev") {
		t.Error("modules.builtin misread")
	}
}

func TestParseDepMalformed(t *testing.T) {
	for _, in := range []string{"kernel/a.ko\n", ": kernel/b.ko\n"} {
		if err := NewIndex().ParseDep(strings.NewReader(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/drivers/block/virtio_blk.ko":           "virtio_blk",
		"kernel/arch/x86/events/intel/intel-uncore.ko": "intel_uncore",
		"kernel/fs/foo.ko.zst":                         "foo",
		"kernel/fs/bar-baz.ko.xz":                      "bar_baz",
		"virtio-blk":                                   "virtio_blk",
	} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseList(t *testing.T) {
	got := ParseList(" virtio-blk,,button , evdev,")
	if want := []string{"virtio_blk", "button", "evdev"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func names(ms []*Module) []string {
	var s []string
	for _, m := range ms {
		s = append(s, m.Name)
	}
	return s
}

func TestPlan(t *testing.T) {
	ix := fixture(t)
	for _, tc := range []struct {
		name                   string
		req                    []string
		load, builtin, missing []string
	}{
		{name: "modprobe order", req: []string{"vsock_loopback"},
			load: []string{"vsock", "vmw_vsock_virtio_transport_common", "vsock_loopback"}},
		{name: "shared dependencies once", req: []string{"virtio_mmio", "virtio_blk", "virtio_console", "button", "evdev"},
			load: []string{"virtio_ring", "virtio", "virtio_mmio", "virtio_blk", "virtio_console", "button", "evdev"}},
		{name: "requested twice and as a dependency", req: []string{"vsock", "vsock-loopback", "vsock"},
			load: []string{"vsock", "vmw_vsock_virtio_transport_common", "vsock_loopback"}},
		{name: "built in and missing", req: []string{"i8042", "nosuch", "evdev", "nosuch"},
			load: []string{"evdev"}, builtin: []string{"i8042"}, missing: []string{"nosuch"}},
		{name: "missing dependency", req: []string{"snd_fake"},
			load: []string{"evdev", "snd_fake"}, missing: []string{"snd_missing_dep"}},
		{name: "nothing", req: []string{"", " "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ix.Plan(tc.req)
			if got := names(p.Load); !slices.Equal(got, tc.load) {
				t.Errorf("load %v, want %v", got, tc.load)
			}
			if !slices.Equal(p.Builtin, tc.builtin) {
				t.Errorf("builtin %v, want %v", p.Builtin, tc.builtin)
			}
			if !slices.Equal(p.Missing, tc.missing) {
				t.Errorf("missing %v, want %v", p.Missing, tc.missing)
			}
		})
	}
}

// TestPlanCycle checks that a cycle, which depmod never writes, ends.
func TestPlanCycle(t *testing.T) {
	ix := NewIndex()
	if err := ix.ParseDep(strings.NewReader("a.ko: b.ko\nb.ko: a.ko\n")); err != nil {
		t.Fatal(err)
	}
	if got := names(ix.Plan([]string{"a"}).Load); len(got) != 2 {
		t.Errorf("load %v, want both once", got)
	}
}
