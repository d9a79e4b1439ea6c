package shutdown

import (
	"strconv"
	"strings"
	"testing"
)

const sampleMountinfo = `22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:2 - proc proc rw
24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:3 - sysfs sysfs rw
25 22 0:5 / /dev rw,nosuid shared:4 - devtmpfs devtmpfs rw,size=1000k
30 22 0:30 / /tmp rw,nosuid,nodev shared:5 - tmpfs tmpfs rw
31 30 0:31 / /tmp/a\040dir rw,nosuid,nodev - tmpfs tmpfs rw,size=1024k
32 22 253:1 /srv /mnt/bind ro,relatime shared:1 - ext4 /dev/vda1 rw
33 22 253:2 / /data rw,noatime - ext4 /dev/vdb ro
34 22 0:33 / /run rw,nosuid,nodev - tmpfs tmpfs rw
35 34 0:34 / /run rw,nosuid,nodev - tmpfs tmpfs rw
`

func TestParseMountinfo(t *testing.T) {
	ms, err := ParseMountinfo(strings.NewReader(sampleMountinfo))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 10 {
		t.Fatalf("parsed %d mounts, want 10", len(ms))
	}
	m := ms[5]
	if m.Target != "/tmp/a dir" || m.FSType != "tmpfs" || m.Parent != 30 || m.Dev != "0:31" {
		t.Errorf("mount 31: %+v", m)
	}
	if ms[0].Options[1] != "relatime" || ms[0].SuperOpts[0] != "rw" || ms[0].Source != "/dev/vda1" {
		t.Errorf("root: %+v", ms[0])
	}
	for _, bad := range []string{"1 2 3", "x 1 0:1 / / rw - ext4 /dev/a rw", "1 2 0:1 / / rw no-separator ext4 /dev/a rw"} {
		ms, err := ParseMountinfo(strings.NewReader(sampleMountinfo + bad + "\n"))
		if err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%q parsed without error: %v", bad, err)
		}
		if len(ms) != 10 {
			t.Errorf("with %q: %d good mounts kept, want 10", bad, len(ms))
		}
	}
}

func TestRemountPlan(t *testing.T) {
	ms, _ := ParseMountinfo(strings.NewReader(sampleMountinfo))
	var got []string
	for _, m := range RemountPlan(ms) {
		got = append(got, m.Target)
	}
	// Innermost first; proc, sysfs and devtmpfs left out; the bind mount of
	// the root's superblock and the read-only superblock of /data left out;
	// of the two mounts stacked on /run, only the top one.
	want := []string{"/tmp/a dir", "/run", "/tmp", "/"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("plan %q, want %q", got, want)
	}
	for _, m := range RemountPlan(ms) {
		if m.Target == "/run" && m.ID != 35 {
			t.Errorf("/run: remounting mount %d, want the top one (35)", m.ID)
		}
	}
}

func TestUnescapeOctal(t *testing.T) {
	for in, want := range map[string]string{
		`/a\040b`:   "/a b",
		`/a\011b`:   "/a\tb",
		`/a\134b`:   `/a\b`,
		`/a\012`:    "/a\n",
		`/plain`:    "/plain",
		`/short\04`: `/short\04`,
		`/bad\089`:  `/bad\089`,
	} {
		if got := unescapeOctal(in); got != want {
			t.Errorf("unescapeOctal(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want stat
	}{
		{"42 (sleep) S 1 42 42 0 -1 4194560 100 0", stat{pid: 42, comm: "sleep", state: 'S', ppid: 1, exitCode: -1}},
		{"7 (a) b (c) Z 1 7 7 0 -1 4194304 0", stat{pid: 7, comm: "a) b (c", state: 'Z', ppid: 1, exitCode: -1}},
		{"2 (kthreadd) S 0 0 0 0 -1 2129984 0", stat{pid: 2, comm: "kthreadd", state: 'S', ppid: 0, kthread: true, exitCode: -1}},
		{fullStat(9, 'Z', 9), stat{pid: 9, comm: "x", state: 'Z', ppid: 1, exitCode: 9}},
	} {
		got, err := parseStat(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseStat(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "42 sleep S 1", "x (a) S 1 1 1 0 -1 0", "1 (a) S", "1 (a) SS 1 1 1 0 -1 0"} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q) succeeded", bad)
		}
	}
}

// fullStat is a /proc/PID/stat line with all 52 fields, exit_code last.
func fullStat(pid int, state byte, exitCode int) string {
	f := []string{strconv.Itoa(pid), "(x)", string(state), "1"}
	for len(f) < 51 {
		f = append(f, "0")
	}
	return strings.Join(append(f, strconv.Itoa(exitCode)), " ")
}

// TestSurvived: a zombie is a survivor of the grace only if SIGKILL ended it.
func TestSurvived(t *testing.T) {
	for _, tc := range []struct {
		line string
		want bool
	}{
		{fullStat(3, 'S', 0), true},               // still running
		{fullStat(3, 'Z', 9), true},               // killed by SIGKILL
		{fullStat(3, 'Z', 9|0x80), true},          // ... with a core flag
		{fullStat(3, 'Z', 0), false},              // exited 0, parent never waited
		{fullStat(3, 'Z', 15), false},             // killed by SIGTERM
		{fullStat(3, 'Z', 143<<8), false},         // exited 143
		{"3 (old) Z 1 3 3 0 -1 4194304 0", false}, // no exit_code field
	} {
		st, err := parseStat(tc.line)
		if err != nil || st.survived() != tc.want {
			t.Errorf("%q: survived %v, %v; want %v", tc.line, st.survived(), err, tc.want)
		}
	}
}

func TestFinal(t *testing.T) {
	for _, f := range []Final{Poweroff, Restart, Halt} {
		got, err := ParseFinal(f.String())
		if err != nil || got != f {
			t.Errorf("ParseFinal(%q) = %v, %v", f, got, err)
		}
	}
	if _, err := ParseFinal("reboot"); err == nil {
		t.Error("ParseFinal(reboot) succeeded")
	}
	if Poweroff.Cmd() != 0x4321fedc || Restart.Cmd() != 0x01234567 || Halt.Cmd() != 0xcdef0123 {
		t.Error("reboot(2) command values differ from include/uapi/linux/reboot.h")
	}
}

func TestExitStatus(t *testing.T) {
	if exitStatus(3, 0) != 3 || exitStatus(0, 9) != 137 || exitStatus(0, 15) != 143 {
		t.Error("exit statuses differ from a shell's")
	}
}
