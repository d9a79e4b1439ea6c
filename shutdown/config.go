package shutdown

import "time"

// Config sets a Sequence's deadlines and final command.
type Config struct {
	// Grace is how long processes have to exit after SIGTERM.
	Grace time.Duration
	// KillTimeout bounds the wait for processes after SIGKILL (a process in
	// uninterruptible sleep cannot die).
	KillTimeout time.Duration
	// SyncTimeout bounds sync(2), and then the remounts, each.
	SyncTimeout time.Duration
	// FinishTimeout bounds the wait for finishers (OnFinish) after the
	// reboot event.
	FinishTimeout time.Duration
	// Final is the reboot(2) command.
	Final Final
	// Remount enables the read-only remount step. It must stay false unless
	// remounts cannot reach filesystems outside the VM or sandbox.
	Remount bool
	// Leave, if set, picks mounts the remount step leaves alone (in the
	// sandbox: those inherited from the host, which are not ours to make
	// read-only and would refuse with EPERM), and LeaveWhy says why, once.
	Leave    func(Mount) bool
	LeaveWhy string
	// Expected explains errors that are expected where PID 1 runs (EPERM on
	// inherited filesystems in a user namespace), and returns "" for the
	// others. Expected errors are reported at info level, with the
	// explanation, and not counted as failures. Nil expects none.
	Expected func(error) string
	// Reboot calls reboot(2); nil means unix.Reboot. It returns only on
	// failure (or in a test).
	Reboot func(cmd int) error
	// Sync flushes the filesystems; nil means sync(2). Tests inject a sync
	// that hangs: a real one must never be made to, on a shared machine.
	Sync func()
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Grace:         10 * time.Second,
		KillTimeout:   2 * time.Second,
		SyncTimeout:   30 * time.Second,
		FinishTimeout: time.Second,
		Final:         Poweroff,
	}
}
