package shutdown

import (
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Reaper is the single owner of wait4(2) in PID 1: no other code may wait for
// a child, or the two steal each other's statuses. It reaps every process that
// ends up as PID 1's child, orphans included, and keeps the exit statuses of
// the processes vminit started itself.
//
// Reap must be called on every SIGCHLD wake-up and once before the loop
// starts: SIGCHLDs coalesce, so the reaper drains until wait4 reports no
// exited child or ECHILD, and never counts signals. Reaper methods run on the
// loop goroutine.
type Reaper struct {
	// OnExit is called for every reaped process.
	OnExit func(Exit)
	// OnDrained is called after each drain. gone reports that wait4
	// returned ECHILD: PID 1 has no child left, so (in a PID namespace, or
	// in a VM where every process descends from PID 1) no process is left.
	OnDrained func(gone bool)
	// OnError is called if waitid(2) fails with anything but ECHILD.
	OnError func(error)
	// Names makes the reaper read each zombie's name from /proc before it
	// reaps it (a waitid(2) WNOWAIT look, then /proc/PID/comm). It about
	// doubles PID 1's CPU time per reaped process; without it, only the
	// processes vminit started are named.
	Names bool

	started  map[int]string // pid → comm, for processes vminit started
	statuses map[int]Exit
	busy     bool // a drain is in progress (OnExit may call Reap again)
	again    bool
	path     []byte
}

// NewReaper returns a Reaper that names what it reaps, with no callbacks set.
func NewReaper() *Reaper {
	return &Reaper{started: make(map[int]string), statuses: make(map[int]Exit), Names: true}
}

// Started records that vminit started pid under the name comm, so that its
// exit status is kept for Status.
func (r *Reaper) Started(pid int, comm string) { r.started[pid] = comm }

// Status returns the exit of a process recorded with Started, once reaped.
func (r *Reaper) Status(pid int) (Exit, bool) {
	e, ok := r.statuses[pid]
	return e, ok
}

// Reap drains exited children, calling OnExit for each, then OnDrained. A Reap
// called from OnExit is folded into the drain in progress.
func (r *Reaper) Reap() {
	if r.busy {
		r.again = true
		return
	}
	r.busy = true
	gone := false
	for {
		r.again = false
		gone = r.drain()
		if !r.again {
			break
		}
	}
	r.busy = false
	if r.OnDrained != nil {
		r.OnDrained(gone)
	}
}

// drain reaps until no exited child is left. With Names, each zombie is
// first looked at with WNOWAIT, so that its name can be read from /proc while
// it still exists, then reaped by pid; without, wait4(-1) reaps whichever
// comes.
func (r *Reaper) drain() (gone bool) {
	for {
		pid, err := -1, error(nil)
		if r.Names {
			pid, err = peek()
		}
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.ECHILD:
			return true
		case err != nil:
			if r.OnError != nil {
				r.OnError(os.NewSyscallError("waitid", err))
			}
			return false
		case pid == 0:
			return false
		}
		// The name in /proc is the one the process gave itself; the one
		// recorded at start is only a fallback.
		comm := ""
		if r.Names {
			comm = r.comm(pid)
		}
		var ws unix.WaitStatus
		var got int
		for {
			got, err = unix.Wait4(pid, &ws, unix.WNOHANG|unix.WALL, nil)
			if err != unix.EINTR {
				break
			}
		}
		switch {
		case err == unix.ECHILD && pid == -1:
			return true
		case err != nil:
			if r.OnError != nil {
				r.OnError(os.NewSyscallError("wait4", err))
			}
			if pid == -1 {
				return false
			}
			continue
		case got == 0:
			return false // wait4(-1): none exited
		}
		pid = got
		name, started := r.started[pid]
		if comm == "" {
			comm = name
		}
		e := Exit{PID: pid, Comm: comm, Started: started}
		if ws.Signaled() {
			e.Signal = int(ws.Signal())
		}
		e.Status = exitStatus(ws.ExitStatus(), e.Signal)
		if started {
			delete(r.started, pid)
			r.statuses[pid] = e
		}
		if r.OnExit != nil {
			r.OnExit(e)
		}
	}
}

// siPidOffset is the offset of si_pid in siginfo_t: three ints, padded to the
// alignment of the union (a pointer) on 64-bit architectures.
const siPidOffset = 3*4 + (unsafe.Sizeof(uintptr(0))-4)%8

// peek returns the pid of an exited child without reaping it, 0 if there is
// none yet. waitid(2) needs the siginfo zeroed to tell "none" apart.
func peek() (int, error) {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT|unix.WALL, nil)
	if err != nil {
		return 0, err
	}
	return int(*(*int32)(unsafe.Add(unsafe.Pointer(&info), siPidOffset))), nil
}

// comm reads /proc/PID/comm of a zombie, with raw system calls: os.Open would
// also try to register a regular file with the runtime's poller.
func (r *Reaper) comm(pid int) string {
	r.path = strconv.AppendInt(append(r.path[:0], "/proc/"...), int64(pid), 10)
	r.path = append(r.path, "/comm"...)
	return readSmall(string(r.path))
}

// readSmall returns the first line of a small file, "" if it cannot be read.
func readSmall(path string) string {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return ""
	}
	defer unix.Close(fd)
	var buf [64]byte
	n, err := unix.Read(fd, buf[:])
	if err != nil || n <= 0 {
		return ""
	}
	s := buf[:n]
	for i, c := range s {
		if c == '\n' {
			s = s[:i]
			break
		}
	}
	return string(s)
}
