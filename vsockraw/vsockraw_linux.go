package vsockraw

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ErrRejected is returned by Accept for a peer the listener's filter refused;
// the connection is already closed.
var ErrRejected = errors.New("peer not allowed")

// Listener is a listening stream socket.
type Listener struct {
	fd   int
	addr Addr
	// Allow decides which vsock peers may connect; nil allows every peer.
	// It is not consulted for AF_UNIX peers, which the socket file's mode
	// (0600) already restricts.
	Allow func(Peer) bool
}

// Listen wraps socket(2), bind(2) and listen(2) for a VSock or Unix address.
// A vsock listener binds VMADDR_CID_ANY. A Unix socket file is created mode
// 0600, replacing a stale socket left at the path (never another kind of
// file). Close must be called to release it.
func Listen(a Addr, backlog int) (l *Listener, err error) {
	var domain int
	var sa unix.Sockaddr
	switch a.Kind {
	case VSock:
		domain, sa = unix.AF_VSOCK, &unix.SockaddrVM{CID: unix.VMADDR_CID_ANY, Port: a.Port}
	case Unix:
		domain, sa = unix.AF_UNIX, &unix.SockaddrUnix{Name: a.Path}
	default:
		return nil, fmt.Errorf("vsockraw: %s is not a socket address", a)
	}
	fd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("vsockraw: listen %s: %w", a, os.NewSyscallError("socket", err))
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()
	if a.Kind == Unix {
		if err := removeStaleSocket(a.Path); err != nil {
			return nil, fmt.Errorf("vsockraw: listen %s: %w", a, err)
		}
		// The mode comes from the umask at bind(2): 0600 from the start,
		// with no moment at which others could connect.
		old := unix.Umask(0o177)
		err = unix.Bind(fd, sa)
		unix.Umask(old)
	} else {
		err = unix.Bind(fd, sa)
	}
	if err != nil {
		return nil, fmt.Errorf("vsockraw: listen %s: %w", a, os.NewSyscallError("bind", err))
	}
	if err := unix.Listen(fd, backlog); err != nil {
		return nil, fmt.Errorf("vsockraw: listen %s: %w", a, os.NewSyscallError("listen", err))
	}
	if a.Kind == VSock && a.Port == AnyPort {
		if got, err := unix.Getsockname(fd); err == nil {
			a.Port = got.(*unix.SockaddrVM).Port
		}
	}
	return &Listener{fd: fd, addr: a}, nil
}

func removeStaleSocket(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	return os.Remove(path)
}

// FD returns the listening descriptor, for the event loop.
func (l *Listener) FD() int { return l.fd }

// Addr returns the bound address (with the kernel's port for AnyPort).
func (l *Listener) Addr() Addr { return l.addr }

// Accept wraps accept4(2) with SOCK_NONBLOCK|SOCK_CLOEXEC. It returns
// unix.EAGAIN when no connection is pending, and ErrRejected (with the peer)
// for a vsock peer that Allow refuses.
func (l *Listener) Accept() (*Conn, Peer, error) {
	for {
		fd, sa, err := unix.Accept4(l.fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch err {
		case nil:
			return l.accepted(fd, sa)
		case unix.EINTR, unix.ECONNABORTED:
			continue
		case unix.EAGAIN:
			return nil, Peer{}, err
		}
		return nil, Peer{}, os.NewSyscallError("accept4", err)
	}
}

// accepted applies the peer filter to a connection accept4 returned.
func (l *Listener) accepted(fd int, sa unix.Sockaddr) (*Conn, Peer, error) {
	p := Peer{Kind: l.addr.Kind}
	if vm, ok := sa.(*unix.SockaddrVM); ok {
		p.CID, p.Port = vm.CID, vm.Port
	}
	if p.Kind == VSock && l.Allow != nil && !l.Allow(p) {
		unix.Close(fd)
		return nil, p, ErrRejected
	}
	return &Conn{fd: fd, kind: p.Kind}, p, nil
}

// Close closes the listener and removes a Unix socket file.
func (l *Listener) Close() error {
	err := unix.Close(l.fd)
	if l.addr.Kind == Unix {
		os.Remove(l.addr.Path)
	}
	return os.NewSyscallError("close", err)
}

// Conn is a connected stream: an accepted socket, or an open character
// device.
type Conn struct {
	fd   int
	kind Kind
}

// OpenPort opens a character-device stream (a virtio-serial port) for
// reading and writing, non-blocking and close-on-exec. A port has no
// connections: reading returns 0 while the host side is closed, and the
// descriptor stays usable for the host's next open.
func OpenPort(path string) (*Conn, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("vsockraw: %w", &os.PathError{Op: "open", Path: path, Err: err})
	}
	return &Conn{fd: fd, kind: Port}, nil
}

// FD returns the descriptor, for the event loop.
func (c *Conn) FD() int { return c.fd }

// IsPort reports whether c is a character-device stream.
func (c *Conn) IsPort() bool { return c.kind == Port }

// Read wraps read(2). It returns unix.EAGAIN when nothing is ready, and
// (0, nil) at the end of the stream (for a port: the host closed its side).
func (c *Conn) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(c.fd, p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		return n, nil
	}
}

// Write wraps write(2). It returns unix.EAGAIN when the descriptor is full.
func (c *Conn) Write(p []byte) (int, error) {
	for {
		n, err := unix.Write(c.fd, p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		return n, nil
	}
}

// CloseWrite wraps shutdown(2) with SHUT_WR: the peer reads the end of the
// stream. It does nothing for a port.
func (c *Conn) CloseWrite() error {
	if c.kind == Port {
		return nil
	}
	return os.NewSyscallError("shutdown", unix.Shutdown(c.fd, unix.SHUT_WR))
}

// Close closes the descriptor.
func (c *Conn) Close() error { return os.NewSyscallError("close", unix.Close(c.fd)) }
