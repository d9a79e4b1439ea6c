package main

import (
	"context"

	"github.com/mdlayher/socket"
	"golang.org/x/sys/unix"
)

// dialVsock connects a raw AF_VSOCK stream socket, on Go's netpoller (this
// is the host tool, not PID 1), bounded by ctx.
func dialVsock(ctx context.Context, cid, port uint32) (stream, error) {
	c, err := socket.Socket(unix.AF_VSOCK, unix.SOCK_STREAM, 0, "vsock", nil)
	if err != nil {
		return nil, err
	}
	if _, err := c.Connect(ctx, &unix.SockaddrVM{CID: cid, Port: port}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
