package guard

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// The inode numbers of the initial namespaces (PROC_PID_INIT_INO and
// PROC_USER_INIT_INO in include/linux/proc_ns.h), fixed since Linux 3.8.
const (
	initPIDNamespace  = 0xEFFFFFFC
	initUserNamespace = 0xEFFFFFFD
)

// Check decides whether this process may act as init: mount, disable
// Ctrl-Alt-Del, kill(-1), remount and reboot. It may as PID 1 of the initial
// PID namespace (a VM, where those acts are what it is for), and as PID 1 of
// a PID namespace under a user namespace other than the initial one (the
// sandbox: there the kernel confines all of them to namespaces it owns). It
// refuses anything else, before touching anything: run by hand, it would
// signal a whole machine; as PID 1 of a bare PID namespace (unshare -pf as
// root), its remounts would reach the host's filesystems.
func Check() (Mode, error) {
	if pid := os.Getpid(); pid != 1 {
		return 0, fmt.Errorf("refusing to act as init: this is PID %d, not PID 1.\n"+
			"vminit is the init of a VM (boot it with init=/path/to/vminit or as /init of an initramfs);\n"+
			"to try it on this machine, use: vminit sandbox -- COMMAND", pid)
	}
	pidns, userns, err := namespaces()
	if err != nil {
		return 0, fmt.Errorf("refusing to act as init: cannot tell which namespaces this is: %w", err)
	}
	switch {
	case pidns == initPIDNamespace:
		return VM, nil
	case userns != initUserNamespace:
		return Sandbox, nil
	}
	return 0, errors.New("refusing to act as init: this is PID 1 of a PID namespace in the initial user namespace\n" +
		"(unshare -pf as root?): kill(-1) would stay in the namespace, but remounting read-only would reach\n" +
		"the host's filesystems. Use: vminit sandbox -- COMMAND (new user, PID and mount namespaces)")
}

// namespaces returns the inode numbers of this process's PID and user
// namespaces. When /proc is not mounted yet (early boot), it reads them from
// a proc instance that is created with fsopen(2) and fsmount(2) but never
// attached anywhere, so that the check itself mounts nothing.
func namespaces() (pidns, userns uint64, err error) {
	dirfd := unix.AT_FDCWD
	prefix := "/proc/"
	var st unix.Statfs_t
	if err := unix.Statfs("/proc", &st); err != nil || st.Type != unix.PROC_SUPER_MAGIC {
		fd, err := detachedProc()
		if err != nil {
			return 0, 0, err
		}
		defer unix.Close(fd)
		dirfd, prefix = fd, ""
	}
	ino := func(name string) (uint64, error) {
		var s unix.Stat_t
		if err := unix.Fstatat(dirfd, prefix+"self/ns/"+name, &s, 0); err != nil {
			return 0, os.NewSyscallError("stat "+prefix+"self/ns/"+name, err)
		}
		return s.Ino, nil
	}
	if pidns, err = ino("pid"); err != nil {
		return 0, 0, err
	}
	if userns, err = ino("user"); err != nil {
		return 0, 0, err
	}
	return pidns, userns, nil
}

func detachedProc() (int, error) {
	fsfd, err := unix.Fsopen("proc", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, os.NewSyscallError("fsopen proc (Linux 5.2 or later is needed when /proc is not mounted)", err)
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, os.NewSyscallError("fsconfig", err)
	}
	fd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("fsmount", err)
	}
	return fd, nil
}
