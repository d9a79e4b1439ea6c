package shutdown

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Emergency is PID 1's way out when it cannot go on (a panic, the event loop
// failing): PID 1 may not exit, or the kernel panics ("Attempted to kill
// init"). It syncs, bounded by syncTimeout, calls flush and waits for it at
// most a second, then calls reboot(2) with final; if that fails, it reaps
// forever. It never returns. It uses no event loop, which may be what
// failed.
func Emergency(final Final, syncTimeout time.Duration, flush func(done func())) {
	synced := make(chan struct{})
	go func() {
		unix.Sync()
		close(synced)
	}()
	wait(synced, syncTimeout)
	if flush != nil {
		flushed := make(chan struct{})
		flush(func() { close(flushed) })
		wait(flushed, time.Second)
	}
	err := unix.Reboot(final.Cmd())
	fmt.Fprintf(os.Stderr, "vminit: emergency reboot(%s): %v; reaping forever\n", final, err)
	for {
		// Blocking waits: no polling. With no child left, pause until a
		// signal says one may have come.
		if _, err := unix.Wait4(-1, nil, unix.WALL, nil); err == unix.ECHILD {
			unix.Pause()
		}
	}
}

func wait(c <-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c:
	case <-t.C:
	}
}
