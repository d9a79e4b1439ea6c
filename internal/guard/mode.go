package guard

// Mode is where an init runs.
type Mode int

// The modes Check allows.
const (
	// VM is PID 1 of the initial PID namespace: the init of a real machine.
	VM Mode = iota + 1
	// Sandbox is PID 1 of a PID namespace under a user namespace other than
	// the initial one, where the kernel confines mounts, kill(-1), remounts
	// and reboot(2) to namespaces the new user namespace owns.
	Sandbox
)

func (m Mode) String() string {
	switch m {
	case VM:
		return "vm"
	case Sandbox:
		return "sandbox"
	}
	return "none"
}
