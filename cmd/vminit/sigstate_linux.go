package main

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vminit/vminit/internal/rawfile"
)

// Children must start with no signal ignored or blocked: an ignored SIGTERM
// survives exec and makes a workload deaf to the shutdown. PID 1 of a VM
// starts clean, but PID 1 of a sandbox inherits whatever its caller had
// (GNU make, for one, ignores signals 32 and 33), and the Go runtime passes
// on two things it never touches:
//
//   - the dispositions of signals it has no handler for (32 and 34, which it
//     leaves to the C library, and any that Notify cannot take over), and
//   - the signal mask the process started with, which every child gets back
//     after fork (runtime.msigrestore).
//
// cleanSignals resets every inherited SIG_IGN to SIG_DFL (signals with a Go
// handler are reset by exec anyway) and, if the starting mask blocked
// anything, re-executes PID 1 once with an empty mask, before it does
// anything else. It must run on the main thread (see init). It returns only
// if there was nothing to do or the re-execution failed.
func cleanSignals() error {
	for sig := 1; sig <= 64; sig++ {
		if sig == int(unix.SIGKILL) || sig == int(unix.SIGSTOP) {
			continue
		}
		var old sigaction
		if rtSigaction(sig, nil, &old) == nil && old.handler == sigIgn {
			var dfl sigaction // SIG_DFL, no flags, empty mask
			_ = rtSigaction(sig, &dfl, nil)
		}
	}
	var mask uint64
	if err := rtSigprocmask(unix.SIG_BLOCK, nil, &mask); err != nil || mask == 0 {
		os.Unsetenv(reexecEnv)
		return nil
	}
	return reexecUnmasked()
}

// reexecEnv marks the one re-execution, so that a mask that cannot be
// cleared cannot make PID 1 loop.
const reexecEnv = "VMINIT_REEXEC"

// reexecUnmasked replaces the process with itself, from a thread whose mask
// is empty: the new runtime starts, and its children are born, unmasked.
// It returns only if that fails.
func reexecUnmasked() error {
	if os.Getenv(reexecEnv) != "" {
		os.Unsetenv(reexecEnv)
		return fmt.Errorf("the signal mask is still not empty after re-executing")
	}
	var empty uint64
	if err := rtSigprocmask(unix.SIG_SETMASK, &empty, nil); err != nil {
		return err
	}
	return unix.Exec("/proc/self/exe", os.Args, append(os.Environ(), reexecEnv+"=1"))
}

// sigaction is the kernel's struct sigaction; only the handler, its first
// field on every architecture, is read, and a zero one is SIG_DFL everywhere.
type sigaction struct {
	handler uintptr
	rest    [4]uint64
}

const sigIgn = 1

func rtSigaction(sig int, act, old *sigaction) error {
	_, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig),
		uintptr(unsafe.Pointer(act)), uintptr(unsafe.Pointer(old)), 8, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

func rtSigprocmask(how int, set, old *uint64) error {
	_, _, e := unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, uintptr(how),
		uintptr(unsafe.Pointer(set)), uintptr(unsafe.Pointer(old)), 8, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// closeOnExec marks every descriptor from 3 up close-on-exec: PID 1 may keep
// what it was given (the report pipe), its children get 0, 1 and 2 only.
func closeOnExec() {
	if err := unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return
	}
	// Before Linux 5.11.
	names, err := rawfile.Names("/proc/self/fd")
	if err != nil {
		return
	}
	for _, name := range names {
		if fd, err := strconv.Atoi(name); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}
