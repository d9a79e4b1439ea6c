package main

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vminit/vminit/internal/event"
)

// floor is the least an init can do: SIGTERM to all, then a blocking
// wait4(-1), which the kernel ends the moment a child exits, until ECHILD.
// A timer sends SIGKILL to all at the grace.
type floor struct{}

func (floor) prepare() error { return nil }

func (floor) shutdown(c *config, r *report) {
	<-trigger
	r.trigger = event.Now()
	kill(unix.SIGTERM)
	r.term = event.Now()
	r.graceEnd = r.term + int64(c.grace)
	var killed atomic.Int64
	fired := make(chan struct{})
	t := time.AfterFunc(c.grace, func() {
		kill(unix.SIGKILL)
		killed.Store(event.Now())
		close(fired)
	})
	for {
		_, err := unix.Wait4(-1, nil, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err == unix.ECHILD {
			break
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "strategy:", os.NewSyscallError("wait4", err))
			r.left = 1
			break
		}
		r.reaped++
	}
	r.done = event.Now()
	if !t.Stop() {
		<-fired // the wait may end before the timer's function has
	}
	r.kill = killed.Load()
}
