package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vminit/vminit/internal/event"
)

func TestParseEvent(t *testing.T) {
	evs := []event.Event{
		{Kind: event.Ready, Mono: 2_256_026_123, Mode: "vm"},
		{Kind: event.WorkloadStart, Mono: 2_269_037_000, PID: 86, Comm: "init", Argv: []string{"/init", "_demo", "tree"}},
		{Kind: event.Trigger, Mono: 3_289_476_000, Source: "power_button"},
		{Kind: event.SigTerm, Mono: 3_336_404_000, Grace: time.Second},
		{Kind: event.Reaped, Mono: 4_388_224_000, PID: 98, Comm: "stubborn", Status: 137, Signal: "SIGKILL"},
		{Kind: event.Reaped, Mono: 4_388_224_000, PID: 99, Comm: "a b=c", Status: 0},
		{Kind: event.GraceExpired, Mono: 4_337_657_000, Survivors: []event.Proc{{PID: 98, Comm: "stubborn"}, {PID: 7, Comm: "x"}}},
		{Kind: event.GraceExpired, Mono: 4_337_657_000, Survivors: []event.Proc{}},
		{Kind: event.Sync, Mono: 4_390_301_000, Step: "start"},
		{Kind: event.Remount, Mono: 4_419_658_000, Mount: "/mnt", FSType: "ext4", ReadOnly: true},
		{Kind: event.WorkloadExit, Mono: 3_355_787_000, PID: 86, Status: 7},
		{Kind: event.Reboot, Mono: 4_421_180_000, Command: "poweroff", Err: `remount /x: "busy"`},
		{Kind: event.Error, Mono: 1_000_000, Step: "modules", Err: "evdev: failed"},
	}
	for _, e := range evs {
		// JSON lines come back whole.
		line := strings.TrimRight(string(e.AppendJSON(nil)), "\n")
		got := parseEvent(line)
		if got == nil || !reflect.DeepEqual(*got, e) {
			t.Errorf("JSON %s:\n got %+v\nwant %+v", line, got, e)
		}
		// Text lines lose the sub-microsecond part of the time.
		line = strings.TrimRight(string(e.AppendText(nil)), "\n")
		got = parseEvent(line)
		want := e
		want.Mono -= want.Mono % 1000
		if got == nil || !reflect.DeepEqual(*got, want) {
			t.Errorf("text %s:\n got %+v\nwant %+v", line, got, want)
		}
	}
	log := event.Event{Kind: event.Log, Mono: 5_000_000, Level: "WARN", Msg: "module missing module=evdev"}
	got := parseEvent(strings.TrimRight(string(log.AppendText(nil)), "\n"))
	if got == nil || got.Kind != event.Log || got.Level != "WARN" || got.Msg != log.Msg {
		t.Errorf("log line: %+v", got)
	}
	for _, line := range []string{
		"[    0.374731] PCI: Fatal: No config space access function found",
		"tree[86]: started the tree; waiting for SIGTERM",
		`{"event":`,
		"",
	} {
		if e := parseEvent(line); e != nil {
			t.Errorf("%q parsed as %+v", line, e)
		}
	}
}

func TestCPIO(t *testing.T) {
	cpio, err := lookTool("cpio")
	if err != nil {
		t.Skip("cpio(1) is not installed: cannot check the archive with it (apt-get install cpio)")
	}
	var b bytes.Buffer
	c := newCPIO(&b)
	c.Dir("dev", 0o755)
	c.CharDev("dev/console", 0o600, 5, 1)
	c.Dir("/bin", 0o755)
	c.File("bin/a", 0o755, []byte("12345"))
	c.File("b", 0o644, nil)
	c.Symlink("bin/l", "a")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if b.Len()%4 != 0 {
		t.Errorf("archive of %d bytes is not 4-aligned", b.Len())
	}
	cmd := exec.Command(cpio, "-itv", "--quiet")
	cmd.Stdin = &b
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -itv: %v\n%s", err, out)
	}
	for _, want := range []string{"drwxr-xr-x", "crw-------", "5,   1", "dev/console", "-rwxr-xr-x", "5 ", "bin/a", "bin/l -> a", " b\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("cpio -itv lacks %q:\n%s", want, out)
		}
	}
}

func TestFilterDep(t *testing.T) {
	f := filepath.Join(t.TempDir(), "modules.dep")
	dep := "kernel/a.ko:\nkernel/b.ko: kernel/a.ko\nkernel/c.ko: kernel/a.ko\n"
	if err := os.WriteFile(f, []byte(dep), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := filterDep(f, map[string]bool{"kernel/a.ko": true, "kernel/b.ko": true})
	if err != nil || string(got) != "kernel/a.ko:\nkernel/b.ko: kernel/a.ko\n" {
		t.Errorf("%q %v", got, err)
	}
}

func TestKernelCmdline(t *testing.T) {
	e := &env{tscKHz: 2445426}
	m, _ := machineNamed("microvm")
	got := e.kernelCmdline(vmConfig{machine: m, modules: []string{"button", "evdev"},
		params: []string{"vminit.grace=1s"}, workload: []string{"/bin/testproc", "exit", "7"}})
	want := "console=ttyS0 panic=-1 reboot=k quiet tsc_early_khz=2445426 tsc=reliable vminit.modules=virtio_mmio,button,evdev vminit.grace=1s -- /bin/testproc exit 7"
	if got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	q, _ := machineNamed("q35")
	if got := e.kernelCmdline(vmConfig{machine: q}); got != "console=ttyS0 panic=-1 reboot=k quiet vminit.modules=virtio_pci" {
		t.Errorf("q35: %s", got)
	}
}

func TestStats(t *testing.T) {
	s := stats{300 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}
	if got := s.summary(); !strings.HasPrefix(got, "200ms") || !strings.Contains(got, "100ms–300ms, n=3") {
		t.Errorf("summary %q", got)
	}
	if got := (stats{}).summary(); got != "-" {
		t.Errorf("empty: %q", got)
	}
}
