package main

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// A bootStep is one thing PID 1 sets up before it starts the workload. Steps
// run in order; a failed step is reported and the next one runs.
type bootStep interface {
	String() string
	// run does the step. It returns errSkipped when there was nothing to do.
	run() error
}

var errSkipped = errors.New("nothing to do")

// vmSteps set up a VM's basic filesystems, each only where nothing is
// mounted yet (a kernel with CONFIG_DEVTMPFS_MOUNT, or an initramfs that did
// it, has mounted some already).
var vmSteps = []bootStep{
	mountStep{source: "proc", target: "/proc", fstype: "proc", flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
	mountStep{source: "sysfs", target: "/sys", fstype: "sysfs", flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
	mountStep{source: "devtmpfs", target: "/dev", fstype: "devtmpfs", flags: unix.MS_NOSUID, data: "mode=0755"},
	consoleStep{},
	mountStep{source: "devpts", target: "/dev/pts", fstype: "devpts", flags: unix.MS_NOSUID | unix.MS_NOEXEC, data: "mode=0620,ptmxmode=0666"},
	mountStep{source: "tmpfs", target: "/dev/shm", fstype: "tmpfs", flags: unix.MS_NOSUID | unix.MS_NODEV, data: "mode=1777"},
	mountStep{source: "tmpfs", target: "/run", fstype: "tmpfs", flags: unix.MS_NOSUID | unix.MS_NODEV, data: "mode=0755"},
	mountStep{source: "tmpfs", target: "/tmp", fstype: "tmpfs", flags: unix.MS_NOSUID | unix.MS_NODEV, data: "mode=1777"},
	symlinkStep{target: "/proc/self/fd", link: "/dev/fd"},
	symlinkStep{target: "/proc/self/fd/0", link: "/dev/stdin"},
	symlinkStep{target: "/proc/self/fd/1", link: "/dev/stdout"},
	symlinkStep{target: "/proc/self/fd/2", link: "/dev/stderr"},
}

// sandboxSteps make the sandbox's mount namespace its own: mount events stop
// propagating to and from the host before anything else, then a /proc of the
// new PID namespace covers the host's. Nothing else is mounted: /tmp, /run
// and /dev stay the host's, since the caller's paths live there.
var sandboxSteps = []bootStep{
	privateStep{},
	mountStep{source: "proc", target: "/proc", fstype: "proc", flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, over: true},
}

// mountStep mounts a filesystem, creating the mount point if needed.
type mountStep struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
	over                   bool // mount even if something is mounted there
}

func (m mountStep) String() string { return fmt.Sprintf("mount %s on %s", m.fstype, m.target) }

func (m mountStep) run() error {
	if !m.over && isMountPoint(m.target) {
		return errSkipped
	}
	if err := os.MkdirAll(m.target, 0o755); err != nil {
		return err
	}
	return os.NewSyscallError("mount", unix.Mount(m.source, m.target, m.fstype, m.flags, m.data))
}

// isMountPoint reports whether something is mounted on path, from statx(2)'s
// STATX_ATTR_MOUNT_ROOT (Linux 5.8) or, failing that, from path and its
// parent being on different devices.
func isMountPoint(path string) bool {
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, 0, &stx); err != nil {
		return false
	}
	if stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 {
		return stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
	}
	var parent unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path+"/..", 0, 0, &parent); err != nil {
		return false
	}
	return stx.Dev_major != parent.Dev_major || stx.Dev_minor != parent.Dev_minor || path == "/"
}

// privateStep makes every mount of the namespace private, recursively.
type privateStep struct{}

func (privateStep) String() string { return "make / recursively private" }

func (privateStep) run() error {
	return os.NewSyscallError("mount", unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""))
}

// symlinkStep creates a symbolic link where nothing exists.
type symlinkStep struct{ target, link string }

func (s symlinkStep) String() string { return fmt.Sprintf("symlink %s -> %s", s.link, s.target) }

func (s symlinkStep) run() error {
	if _, err := os.Lstat(s.link); err == nil {
		return errSkipped
	}
	return os.Symlink(s.target, s.link)
}

// consoleStep gives PID 1 descriptors 0, 1 and 2 on /dev/console if the
// kernel could not (an initramfs without /dev/console, or a console that
// failed to open): the workload inherits them, and PID 1 logs to 2.
//
// A Go program never starts with them closed: the runtime (checkfds, Go
// 1.22) opens /dev/null in their place before main, and if there is no
// /dev/null either, it exits with status 2 before main, which for PID 1 is a
// kernel panic ("Attempted to kill init! exitcode=0x00000200"). So a
// standard descriptor on /dev/null counts as missing here: the kernel only
// ever hands init /dev/console or nothing.
type consoleStep struct{}

func (consoleStep) String() string { return "open /dev/console as 0, 1, 2" }

func (consoleStep) run() error {
	var missing []int
	for fd := 0; fd < 3; fd++ {
		if !stdioUsable(fd) {
			missing = append(missing, fd)
		}
	}
	if len(missing) == 0 {
		return errSkipped
	}
	fd, err := unix.Open("/dev/console", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("open /dev/console", err)
	}
	keep := false
	for _, target := range missing {
		if target == fd { // open(2) took the lowest free descriptor
			keep = true
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
				return os.NewSyscallError("fcntl", err)
			}
			continue
		}
		// dup3 clears CLOEXEC on the copy: the workload inherits 0, 1, 2.
		if err := unix.Dup3(fd, target, 0); err != nil {
			unix.Close(fd)
			return os.NewSyscallError("dup3", err)
		}
	}
	if !keep {
		unix.Close(fd)
	}
	return nil
}

// stdioUsable reports whether fd is open on something other than /dev/null
// (character device 1:3).
func stdioUsable(fd int) bool {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false
	}
	isNull := st.Mode&unix.S_IFMT == unix.S_IFCHR && unix.Major(st.Rdev) == 1 && unix.Minor(st.Rdev) == 3
	return !isNull
}
