package shutdown

// Regression tests for defects found by trying to break the remount plan (the break
// branch): each test names the defect it guards against.

import (
	"strings"
	"testing"
)

// TestBreakMountinfoEmptySource: mount(2) accepts an empty source string
// (unix.Mount("", dir, "tmpfs", ...) is common in Go programs), and the
// kernel then prints an empty field in mountinfo: "- tmpfs  rw,...". The
// parser splits with strings.Fields, sees one field too few, and
// ParseMountinfo fails for the whole file: the remount step then remounts
// nothing at all, so every writable filesystem of the VM (its ext4 disks)
// stays read-write, and dirty, at power-off. Fields are separated by single
// spaces (paths are octal-escaped), so an empty field is well defined.
func TestBreakMountinfoEmptySource(t *testing.T) {
	in := sampleMountinfo + "68 22 0:42 / /scratch rw,nosuid,nodev,relatime - tmpfs  rw,size=1024k\n"
	ms, err := ParseMountinfo(strings.NewReader(in))
	if err != nil {
		t.Fatalf("one mount with an empty source: %v (and %d mounts parsed before it)", err, len(ms))
	}
	var plan []string
	for _, m := range RemountPlan(ms) {
		plan = append(plan, m.Target)
	}
	if got := strings.Join(plan, " "); !strings.Contains(got, "/scratch") || !strings.Contains(got, "/tmp") {
		t.Errorf("plan %q", got)
	}
}
