// Package vsockraw is the guest side of vminit's control channel: raw,
// non-blocking, close-on-exec stream sockets (AF_VSOCK, and AF_UNIX for the
// sandbox and tests) and character-device streams (a virtio-serial port),
// as bare file descriptors for vminit's epoll loop.
//
// Nothing here touches Go's netpoller (package net, os.File's poller): PID 1
// has one event loop, and its descriptors are registered there. The package
// wraps the system calls and nothing else: Listen wraps socket(2), bind(2)
// and listen(2); Accept wraps accept4(2); Read and Write wrap read(2) and
// write(2) and return unix.EAGAIN when the descriptor is not ready.
package vsockraw
