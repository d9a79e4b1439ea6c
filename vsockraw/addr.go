package vsockraw

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// Kind is a transport.
type Kind int

// The transports.
const (
	VSock Kind = iota + 1 // AF_VSOCK stream socket, any local CID
	Unix                  // AF_UNIX stream socket
	Port                  // a character-device stream: a virtio-serial port
)

// Addr is a guest-side control address, written "vsock:PORT",
// "unix:PATH" or "vport:NAME" (NAME in /dev/virtio-ports, or an absolute
// path to the device).
type Addr struct {
	Kind Kind
	Port uint32 // VSock
	Path string // Unix: the socket; Port: the device
}

// AnyPort asks the kernel to choose a vsock port (VMADDR_PORT_ANY).
const AnyPort = 0xFFFFFFFF

// ParseAddr parses a guest-side control address.
func ParseAddr(s string) (Addr, error) {
	kind, rest, ok := strings.Cut(s, ":")
	if !ok || rest == "" {
		return Addr{}, fmt.Errorf("control address %q: want vsock:PORT, unix:PATH or vport:NAME", s)
	}
	switch kind {
	case "vsock":
		p, err := strconv.ParseUint(rest, 10, 32)
		if err != nil {
			return Addr{}, fmt.Errorf("control address %q: bad vsock port: %v", s, err)
		}
		return Addr{Kind: VSock, Port: uint32(p)}, nil
	case "unix":
		if !filepath.IsAbs(rest) {
			return Addr{}, fmt.Errorf("control address %q: the socket path must be absolute", s)
		}
		return Addr{Kind: Unix, Path: filepath.Clean(rest)}, nil
	case "vport":
		if filepath.IsAbs(rest) {
			return Addr{Kind: Port, Path: filepath.Clean(rest)}, nil
		}
		if strings.Contains(rest, "/") {
			return Addr{}, fmt.Errorf("control address %q: a port name has no slash", s)
		}
		return Addr{Kind: Port, Path: "/dev/virtio-ports/" + rest}, nil
	}
	return Addr{}, fmt.Errorf("control address %q: unknown transport %q (want vsock, unix or vport)", s, kind)
}

func (a Addr) String() string {
	switch a.Kind {
	case VSock:
		if a.Port == AnyPort {
			return "vsock:any"
		}
		return fmt.Sprintf("vsock:%d", a.Port)
	case Unix:
		return "unix:" + a.Path
	case Port:
		return "vport:" + strings.TrimPrefix(a.Path, "/dev/virtio-ports/")
	}
	return "none"
}

// Peer is the other end of an accepted connection.
type Peer struct {
	Kind Kind
	CID  uint32 // VSock
	Port uint32 // VSock
}

// The well-known CIDs (VMADDR_CID_*).
const (
	CIDHypervisor = 0
	CIDLocal      = 1
	CIDHost       = 2
)

func (p Peer) String() string {
	switch p.Kind {
	case VSock:
		return fmt.Sprintf("vsock %d:%d", p.CID, p.Port)
	case Unix:
		return "unix socket"
	case Port:
		return "serial port"
	}
	return "unknown peer"
}
