package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// stream is a connection to a guest's control channel.
type stream interface {
	io.ReadWriteCloser
	SetDeadline(time.Time) error
	CloseWrite() error
}

// errUnreachable marks failures to connect, as opposed to protocol errors.
type errUnreachable struct{ err error }

func (e errUnreachable) Error() string { return e.err.Error() }
func (e errUnreachable) Unwrap() error { return e.err }

func dial(ctx context.Context, t target) (stream, error) {
	var s stream
	var err error
	switch t.scheme {
	case "vsock":
		s, err = dialVsock(ctx, t.cid, t.port)
	case "hybrid":
		s, err = dialHybrid(ctx, t.path, t.port)
	case "unix":
		var c net.Conn
		c, err = (&net.Dialer{}).DialContext(ctx, "unix", t.path)
		if err == nil {
			s = c.(*net.UnixConn)
		}
	}
	if err != nil {
		return nil, errUnreachable{fmt.Errorf("%s: %w", t, err)}
	}
	return s, nil
}

// dialHybrid connects through a Firecracker / Cloud Hypervisor hybrid vsock
// socket: "CONNECT <port>\n", answered by "OK <host port>\n", then the
// stream is the guest's connection. The VMM closes the connection without a
// word when nothing listens on the guest port, and drops a CONNECT that comes
// before the guest listens, so this retries until ctx ends.
func dialHybrid(ctx context.Context, path string, port uint32) (stream, error) {
	var last error
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		c, err := hybridOnce(ctx, path, port)
		if err == nil {
			return c, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (still failing when the timeout ran out)", last)
		case <-time.After(wait):
		}
	}
}

var errNoListener = errors.New("the VMM closed the connection after CONNECT: nothing listens on that guest port (yet)")

func hybridOnce(ctx context.Context, path string, port uint32) (stream, error) {
	nc, err := (&net.Dialer{}).DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	c := nc.(*net.UnixConn)
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	}
	if _, err := fmt.Fprintf(c, "CONNECT %d\n", port); err != nil {
		c.Close()
		return nil, err
	}
	// Byte by byte: what follows the reply line is the guest's.
	var line []byte
	for b := make([]byte, 1); len(line) < 64; {
		n, err := c.Read(b)
		if n == 0 || err != nil {
			c.Close()
			if len(line) == 0 && (err == nil || errors.Is(err, io.EOF)) {
				return nil, errNoListener
			}
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if b[0] == '\n' {
			break
		}
		line = append(line, b[0])
	}
	if !strings.HasPrefix(string(line), "OK ") {
		c.Close()
		return nil, fmt.Errorf("CONNECT %d: unexpected answer %q", port, line)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}
