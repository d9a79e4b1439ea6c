// Command vminitctl asks a guest's vminit to shut down, and shows what
// happened, from the host.
//
//	vminitctl shutdown|reboot|status|ping --to ADDR [--to ADDR...] [--to-file FILE]
//	          [--grace D] [--final poweroff|restart|halt] [--timeout D] [--json]
//
// ADDR is one of
//
//	vsock://CID:PORT     raw AF_VSOCK (QEMU vhost-vsock, or inside the guest)
//	hybrid://PATH:PORT   the Unix socket of a Firecracker or Cloud Hypervisor
//	                     vsock device ("CONNECT PORT\n" → "OK N\n")
//	unix://PATH          a Unix socket: vminit sandbox --control unix:PATH, or
//	                     QEMU's chardev socket of a virtio-serial port
//
// reboot is shutdown with final=restart. --timeout (default 5s) bounds the
// connection and the wait for the first reply; after the "accepted" reply,
// vminitctl waits for the reboot event up to the grace plus --timeout, then
// for the guest to close the connection (at most 2s more: a VM that only
// halts keeps it open).
//
// Exit status: 0 done gracefully (or ping/status answered); 1 done, but some
// process needed SIGKILL; 2 usage; 3 unreachable or timed out; 4 protocol
// error (an error reply, garbage, or the end of the stream before the reboot
// event). With several targets, the worst of them.
package main
