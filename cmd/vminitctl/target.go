package main

import (
	"fmt"
	"strconv"
	"strings"
)

// target is a host-side address of a guest's control channel.
type target struct {
	raw    string
	scheme string // vsock, hybrid, unix
	path   string // hybrid, unix
	cid    uint32 // vsock
	port   uint32 // vsock, hybrid
}

func parseTarget(s string) (target, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || rest == "" {
		return target{}, fmt.Errorf("address %q: want vsock://CID:PORT, hybrid://PATH:PORT or unix://PATH", s)
	}
	t := target{raw: s, scheme: scheme}
	port := func(p string) (uint32, error) {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("address %q: bad port %q", s, p)
		}
		return uint32(n), nil
	}
	var err error
	switch scheme {
	case "vsock":
		cid, p, ok := strings.Cut(rest, ":")
		if !ok {
			return target{}, fmt.Errorf("address %q: want vsock://CID:PORT", s)
		}
		n, err := strconv.ParseUint(cid, 10, 32)
		if err != nil {
			return target{}, fmt.Errorf("address %q: bad CID %q", s, cid)
		}
		t.cid = uint32(n)
		t.port, err = port(p)
		return t, err
	case "hybrid":
		i := strings.LastIndexByte(rest, ':')
		if i <= 0 {
			return target{}, fmt.Errorf("address %q: want hybrid://PATH:PORT", s)
		}
		t.path = rest[:i]
		t.port, err = port(rest[i+1:])
		return t, err
	case "unix":
		t.path = rest
		return t, nil
	}
	return target{}, fmt.Errorf("address %q: unknown scheme %q (want vsock, hybrid or unix)", s, scheme)
}

func (t target) String() string { return t.raw }
