package shutdown

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Mount is one line of /proc/PID/mountinfo (proc(5)).
type Mount struct {
	ID, Parent int
	Dev        string // major:minor of the superblock
	Root       string
	Target     string
	Options    []string // per-mount options: rw/ro, nosuid, nodev, ...
	FSType     string
	Source     string
	SuperOpts  []string // superblock options: rw/ro, ...
}

// ParseMountinfo parses the format of /proc/PID/mountinfo. A line it cannot
// parse is left out and reported in the error, and the others are returned:
// one odd mount must not keep the rest from being remounted.
func ParseMountinfo(r io.Reader) ([]Mount, error) {
	var ms []Mount
	var errs []error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		m, err := parseMountLine(line)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ms = append(ms, m)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return ms, errors.Join(errs...)
}

// parseMountLine parses
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// where the optional fields before "-" may be any in number. Fields are
// separated by single spaces (the kernel escapes spaces in paths), and may be
// empty: mount(2) with an empty source string prints "- tmpfs  rw".
func parseMountLine(line string) (Mount, error) {
	f := strings.Split(line, " ")
	sep := slices.Index(f, "-")
	if len(f) < 10 || sep < 6 || len(f) < sep+4 {
		return Mount{}, fmt.Errorf("mountinfo: malformed line %q", line)
	}
	var m Mount
	if _, err := fmt.Sscanf(f[0]+" "+f[1], "%d %d", &m.ID, &m.Parent); err != nil {
		return Mount{}, fmt.Errorf("mountinfo: malformed line %q", line)
	}
	m.Dev = f[2]
	m.Root = unescapeOctal(f[3])
	m.Target = unescapeOctal(f[4])
	m.Options = strings.Split(f[5], ",")
	m.FSType = f[sep+1]
	m.Source = unescapeOctal(f[sep+2])
	m.SuperOpts = strings.Split(f[sep+3], ",")
	return m, nil
}

// unescapeOctal undoes the kernel's \ooo escaping of space, tab, newline and
// backslash in mountinfo paths.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// Writable reports whether the superblock is mounted read-write.
func (m *Mount) Writable() bool { return slices.Contains(m.SuperOpts, "rw") }

// virtualFS lists filesystems with no data to lose: remounting them
// read-only protects nothing, and some refuse.
var virtualFS = map[string]bool{
	"autofs": true, "binfmt_misc": true, "bpf": true, "cgroup": true, "cgroup2": true,
	"configfs": true, "debugfs": true, "devpts": true, "devtmpfs": true, "efivarfs": true,
	"fusectl": true, "hugetlbfs": true, "mqueue": true, "nsfs": true, "proc": true,
	"pstore": true, "rootfs": true, "rpc_pipefs": true, "securityfs": true,
	"selinuxfs": true, "sysfs": true, "tracefs": true,
}

// RemountPlan returns the mounts to remount read-only, innermost mount
// points first: one per writable superblock (a remount acts on the
// superblock, so the bind mounts of it are covered), preferring the mount of
// the filesystem's root over bind mounts of its subdirectories, and only
// mounts at the top of their mount point (the others cannot be reached by
// path). Virtual filesystems, with no data to lose, are left out.
func RemountPlan(ms []Mount) []Mount {
	top := make(map[string]int) // mount point → index of the last mount on it
	for i, m := range ms {
		top[m.Target] = i
	}
	best := make(map[string]int) // superblock → index of its representative
	for i, m := range ms {
		if top[m.Target] != i || !m.Writable() || virtualFS[m.FSType] {
			continue
		}
		if j, ok := best[m.Dev]; !ok || ms[j].Root != "/" && m.Root == "/" {
			best[m.Dev] = i
		}
	}
	order := make([]int, 0, len(best))
	for _, i := range best {
		order = append(order, i)
	}
	slices.SortFunc(order, func(a, b int) int {
		if d := depth(ms[b].Target) - depth(ms[a].Target); d != 0 {
			return d
		}
		return b - a // later mounts first among equals
	})
	plan := make([]Mount, len(order))
	for k, i := range order {
		plan[k] = ms[i]
	}
	return plan
}

// depth counts the components of an absolute path: "/" is 0, "/a/b" is 2.
func depth(p string) int {
	n := 0
	for _, c := range strings.Split(p, "/") {
		if c != "" {
			n++
		}
	}
	return n
}
