// Package control is vminit's control protocol: a host asks the guest's PID 1
// to shut down, or how it is, over a stream (vsock, a Unix socket, a
// virtio-serial port). Requests are plain text lines, so that
//
//	echo shutdown | socat - VSOCK-CONNECT:CID:PORT
//
// works; replies and the shutdown's timeline are JSON lines in vminit's event
// schema. docs/protocol.md describes it.
//
// The parser is portable, and shared with the host tool. The server is
// driven by PID 1's event loop: nothing a client does can block the loop or
// delay reaping, and every connection is bounded in line length, buffered
// output, idle time and number.
package control
