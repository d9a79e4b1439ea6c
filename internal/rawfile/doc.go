// Package rawfile reads files and directories with bare system calls, for
// PID 1. The os package's files register with the Go runtime's network
// poller, which it creates on first use (an epoll instance and an eventfd
// that PID 1 would then carry for good, beside its own loop); these reads
// are of /proc and small files, which never block.
package rawfile
