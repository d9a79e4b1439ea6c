package main

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vminit/vminit/internal/event"
)

// The polled design's constants, from the seed vminit replaces.
const (
	pollInterval = 100 * time.Millisecond
	killWindow   = 500 * time.Millisecond
)

// polled reproduces the seed's shutdown (minus the 100 ms sleep its RPC
// handler made before starting, since the trigger here is a signal): SIGTERM
// to all, no SIGCONT; waitpid(-1, WNOHANG) until ECHILD or the grace,
// sleeping 100 ms each time no child has exited; SIGKILL to all; the same
// loop for at most 500 ms.
type polled struct{}

func (polled) prepare() error { return nil }

func (polled) shutdown(c *config, r *report) {
	<-trigger
	r.trigger = event.Now()
	kill(unix.SIGTERM)
	r.term = event.Now()
	r.graceEnd = r.term + int64(c.grace)
	if !poll(event.Time(r.graceEnd), r) {
		kill(unix.SIGKILL)
		r.kill = event.Now()
		if !poll(time.Now().Add(killWindow), r) {
			r.left = 1
		}
	}
	r.done = event.Now()
}

// poll reaps until waitpid reports ECHILD (it returns true) or the deadline
// passes (false). It sleeps 100 ms whenever no child has exited.
func poll(deadline time.Time, r *report) bool {
	for {
		pid, err := unix.Wait4(-1, nil, unix.WNOHANG, nil)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.ECHILD:
			return true
		case err != nil:
			fmt.Fprintln(os.Stderr, "strategy:", os.NewSyscallError("wait4", err))
			return false
		case pid > 0:
			r.reaped++
			continue
		}
		if !time.Now().Before(deadline) {
			return false
		}
		time.Sleep(pollInterval)
		r.sleeps++
	}
}
