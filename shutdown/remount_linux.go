package shutdown

import (
	"os"

	"golang.org/x/sys/unix"
)

// mountFlags maps the per-mount options of mountinfo to mount(2) flags. A
// remount without MS_BIND also sets the mount's own flags; passing the
// current ones keeps them (and a user namespace refuses to clear locked ones).
var mountFlags = map[string]uintptr{
	"nosuid":      unix.MS_NOSUID,
	"nodev":       unix.MS_NODEV,
	"noexec":      unix.MS_NOEXEC,
	"noatime":     unix.MS_NOATIME,
	"nodiratime":  unix.MS_NODIRATIME,
	"relatime":    unix.MS_RELATIME,
	"strictatime": unix.MS_STRICTATIME,
}

// remountReadOnly remounts m's superblock read-only: mount(2) with
// MS_REMOUNT|MS_RDONLY and no MS_BIND. (A bind-mount flag change would leave
// the filesystem itself writable, and ext4 would not be clean.)
func remountReadOnly(m Mount) error {
	flags := uintptr(unix.MS_REMOUNT | unix.MS_RDONLY)
	for _, o := range m.Options {
		flags |= mountFlags[o]
	}
	if err := unix.Mount("", m.Target, "", flags, ""); err != nil {
		return os.NewSyscallError("mount", err)
	}
	return nil
}

// isReadOnly reports whether the filesystem at path is read-only now.
func isReadOnly(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Flags&unix.ST_RDONLY != 0
}
