package shutdown

// Phase is where a Sequence is.
type Phase int

// The phases, in order.
const (
	Running     Phase = iota // no shutdown requested
	Terminating              // SIGTERM sent; waiting for all processes or the grace
	Killing                  // SIGKILL sent; reaping until none is left or the kill deadline
	Syncing                  // sync(2) running under a deadline
	Remounting               // remounting filesystems read-only under a deadline
	Finishing                // reboot event sent; waiting for logs and hosts to read it
	Rebooting                // reboot(2) called
	Frozen                   // reboot(2) failed every time; PID 1 only reaps
)

var phaseNames = [...]string{"running", "terminating", "killing", "syncing", "remounting", "finishing", "rebooting", "frozen"}

func (p Phase) String() string {
	if p >= 0 && int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return "unknown"
}
