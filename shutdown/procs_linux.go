package shutdown

import (
	"os"
	"strconv"

	"github.com/vminit/vminit/internal/event"
	"github.com/vminit/vminit/internal/rawfile"
)

// Processes lists the processes that PID 1's /proc shows, other than PID 1
// itself and kernel threads: in a VM and in a PID namespace with its own
// /proc, the processes a kill(-1, sig) reaches. Zombies are included (they
// keep their name until reaped).
func Processes() ([]event.Proc, error) { return processes(func(stat) bool { return true }) }

// Survivors lists the processes that outlived the grace, once SIGKILL has
// been sent to all: those still running, and the zombies SIGKILL made (they
// keep their names until reaped, so the kill need not wait for the listing).
// Zombies that had exited on their own are not survivors.
func Survivors() ([]event.Proc, error) { return processes(stat.survived) }

func processes(keep func(stat) bool) ([]event.Proc, error) {
	names, err := rawfile.Names("/proc")
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	var ps []event.Proc
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid == self {
			continue
		}
		b, err := rawfile.ReadFile("/proc/" + name + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		st, err := parseStat(string(b))
		if err != nil || st.kthread || !keep(st) {
			continue
		}
		ps = append(ps, event.Proc{PID: pid, Comm: st.comm})
	}
	return ps, nil
}
