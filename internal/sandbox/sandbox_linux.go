package sandbox

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Nobody is the host uid and gid that a root caller's sandbox root maps to.
const Nobody = 65534

// Options says what to run as the sandbox's PID 1.
type Options struct {
	// Exe is the program, open for reading. It is executed through
	// /proc/self/fd, so the directories leading to it need not be searchable
	// by the mapped user (a checkout under /root, a go test binary).
	Exe *os.File
	// Args is argv, Args[0] included.
	Args []string
	// Env is the environment.
	Env []string
	// Files become descriptors 0, 1, 2, 3, ... of PID 1.
	Files []*os.File
	// Cgroup, if not nil, is an open cgroup v2 directory that PID 1 starts
	// in (clone3 with CLONE_INTO_CGROUP, Linux 5.7), so that it is there
	// from its first instruction: the benchmark reads PID 1's CPU time from
	// a cgroup that holds PID 1 alone.
	Cgroup *os.File
}

// Process is a running sandbox, seen from the host.
type Process struct {
	// Pid is PID 1's pid in the caller's PID namespace.
	Pid int
	// UID and GID are the host ids that root in the sandbox maps to.
	UID, GID int
}

// HostIDs returns the unprivileged host uid and gid that a sandbox's root
// maps to for the caller.
func HostIDs() (uid, gid int) {
	if os.Geteuid() == 0 {
		return Nobody, Nobody
	}
	return os.Geteuid(), os.Getegid()
}

// Start starts o.Exe as PID 1 of new namespaces, in a session of its own and
// with a parent-death signal (SIGKILL), so that the namespace dies with the
// caller. The signal is tied to the thread that forks: Start must not run on
// a goroutine locked to a thread that may exit (Go ends only such threads).
// The caller must Wait for the process.
func Start(o Options) (*Process, error) {
	// A descriptor number far above the few that ForkExec rearranges, so
	// the path stays valid in the child until execve(2), which closes it.
	fd, err := unix.FcntlInt(o.Exe.Fd(), unix.F_DUPFD_CLOEXEC, 100)
	if err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	defer unix.Close(fd)

	files := make([]uintptr, len(o.Files))
	for i, f := range o.Files {
		files[i] = f.Fd()
	}
	uid, gid := HostIDs()
	pid, err := syscall.ForkExec(fmt.Sprintf("/proc/self/fd/%d", fd), o.Args, &syscall.ProcAttr{
		Env:   o.Env,
		Files: files,
		Sys: &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNS |
				unix.CLONE_NEWUTS | unix.CLONE_NEWIPC,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: gid, Size: 1}},
			// Without switching to the mapped root, the child would keep
			// host uid 0 for permission checks on files.
			Credential:                 &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true},
			GidMappingsEnableSetgroups: false,
			Setsid:                     true,
			Pdeathsig:                  syscall.SIGKILL,
			UseCgroupFD:                o.Cgroup != nil,
			CgroupFD:                   fdOf(o.Cgroup),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("sandbox: start %s: %w", o.Args[0], err)
	}
	return &Process{Pid: pid, UID: uid, GID: gid}, nil
}

func fdOf(f *os.File) int {
	if f == nil {
		return -1
	}
	return int(f.Fd())
}

// Signal sends sig to PID 1.
func (p *Process) Signal(sig syscall.Signal) error {
	return os.NewSyscallError("kill", unix.Kill(p.Pid, sig))
}

// Wait waits for PID 1 to end and returns its wait status. A PID 1 ended by
// reboot(2) shows as killed by SIGINT (power-off, halt) or SIGHUP (restart).
func (p *Process) Wait() (unix.WaitStatus, *unix.Rusage, error) {
	var ws unix.WaitStatus
	var ru unix.Rusage
	for {
		_, err := unix.Wait4(p.Pid, &ws, 0, &ru)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, nil, os.NewSyscallError("wait4", err)
		}
		return ws, &ru, nil
	}
}

// Describe says how a process ended, from its wait status: "exit status N",
// "killed by SIGNAME".
func Describe(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return "killed by " + unix.SignalName(ws.Signal())
	}
	return fmt.Sprintf("wait status %#x", uint32(ws))
}
