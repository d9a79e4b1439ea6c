package shutdown

import "fmt"

// Final is the reboot(2) command that ends the sequence.
type Final int

// The final commands. Poweroff is the default. On Firecracker x86_64 a guest
// power-off only halts the CPUs and the VMM keeps running; Restart (with the
// default reboot=k boot argument) is what makes Firecracker exit there.
const (
	Poweroff Final = iota
	Restart
	Halt
)

var finalNames = [...]string{Poweroff: "poweroff", Restart: "restart", Halt: "halt"}

func (f Final) String() string {
	if f >= 0 && int(f) < len(finalNames) {
		return finalNames[f]
	}
	return fmt.Sprintf("Final(%d)", int(f))
}

// ParseFinal parses "poweroff", "restart" or "halt".
func ParseFinal(s string) (Final, error) {
	for f, name := range finalNames {
		if s == name {
			return Final(f), nil
		}
	}
	return 0, fmt.Errorf("unknown final command %q (want poweroff, restart or halt)", s)
}

// The LINUX_REBOOT_CMD_* values (include/uapi/linux/reboot.h), here so that
// the portable parts of the package need no system headers.
const (
	cmdPowerOff = 0x4321fedc
	cmdRestart  = 0x01234567
	cmdHalt     = 0xcdef0123
)

// Cmd returns the reboot(2) command.
func (f Final) Cmd() int {
	switch f {
	case Restart:
		return cmdRestart
	case Halt:
		return cmdHalt
	default:
		return cmdPowerOff
	}
}
