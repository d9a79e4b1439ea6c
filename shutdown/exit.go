package shutdown

// Exit is one reaped process.
type Exit struct {
	PID     int
	Comm    string
	Status  int  // as a shell reports it: the exit code, or 128+signal
	Signal  int  // the signal that killed it, or 0
	Started bool // vminit started it (see Reaper.Started)
}

// exitStatus returns the status a shell reports for a process that exited
// with code, or was killed by sig (when sig != 0): 128+sig.
func exitStatus(code, sig int) int {
	if sig != 0 {
		return 128 + sig
	}
	return code
}
