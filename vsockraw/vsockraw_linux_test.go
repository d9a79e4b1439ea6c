package vsockraw

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vminit/vminit/loop"
)

// TestVsockListener binds a real AF_VSOCK listener on a port the kernel
// chooses (vsock is not namespaced: a fixed port on a shared machine may
// belong to its own agents) and registers it with the loop. Nothing connects:
// this machine has no vsock loopback, and no peer here is ours to call. The
// VM tests connect for real, inside a guest.
func TestVsockListener(t *testing.T) {
	l, err := Listen(Addr{Kind: VSock, Port: AnyPort}, 8)
	if errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.ENODEV) {
		t.Skipf("no AF_VSOCK here (%v): load vsock.ko, or run in a VM", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Addr().Port == AnyPort || l.Addr().Port == 0 {
		t.Errorf("bound port %d: the kernel's choice was not read back", l.Addr().Port)
	}
	checkFlags(t, l.FD())
	lp, err := loop.New()
	if err != nil {
		t.Fatal(err)
	}
	defer lp.Close()
	if err := lp.Add(l.FD(), unix.EPOLLIN, func(uint32) {}); err != nil {
		t.Fatalf("register with the loop: %v", err)
	}
	if _, _, err := l.Accept(); err != unix.EAGAIN {
		t.Errorf("Accept with nothing pending: %v, want EAGAIN", err)
	}
	if err := lp.Remove(l.FD()); err != nil {
		t.Error(err)
	}
}

// checkFlags: close-on-exec and non-blocking, as every descriptor of PID 1.
func checkFlags(t *testing.T, fd int) {
	t.Helper()
	if fl, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); fl&unix.FD_CLOEXEC == 0 {
		t.Errorf("fd %d is not close-on-exec", fd)
	}
	if fl, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); fl&unix.O_NONBLOCK == 0 {
		t.Errorf("fd %d is blocking", fd)
	}
}

// TestPeerFilter exercises the accept path's peer check with vsock peer
// addresses on real descriptors: only allowed CIDs get a connection.
func TestPeerFilter(t *testing.T) {
	l := &Listener{addr: Addr{Kind: VSock, Port: 10240}, Allow: func(p Peer) bool { return p.CID == CIDHost }}
	for _, tc := range []struct {
		cid  uint32
		want bool
	}{{CIDHost, true}, {CIDLocal, false}, {3, false}, {CIDHypervisor, false}} {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(fds[1])
		c, peer, err := l.accepted(fds[0], &unix.SockaddrVM{CID: tc.cid, Port: 5000})
		if peer.CID != tc.cid || peer.Port != 5000 || peer.Kind != VSock {
			t.Errorf("peer %+v", peer)
		}
		if tc.want {
			if err != nil || c == nil {
				t.Errorf("CID %d refused: %v", tc.cid, err)
			} else {
				c.Close()
			}
			continue
		}
		if !errors.Is(err, ErrRejected) {
			t.Errorf("CID %d: %v, want ErrRejected", tc.cid, err)
		}
		// The rejected descriptor is closed.
		if _, err := unix.FcntlInt(uintptr(fds[0]), unix.F_GETFD, 0); err != unix.EBADF {
			t.Errorf("CID %d: the rejected descriptor is still open", tc.cid)
		}
	}
}

func TestUnixListener(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ctl.sock")
	// A stale socket from an earlier boot is replaced.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	l, err := Listen(Addr{Kind: Unix, Path: path}, 8)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	checkFlags(t, l.FD())
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	client, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var c *Conn
	for deadline := time.Now().Add(5 * time.Second); c == nil; {
		c, _, err = l.Accept()
		if err == unix.EAGAIN && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	checkFlags(t, c.FD())
	client.Write([]byte("hello"))
	buf := make([]byte, 16)
	var n int
	for deadline := time.Now().Add(5 * time.Second); n == 0; time.Sleep(time.Millisecond) {
		n, err = c.Read(buf)
		if err != nil && err != unix.EAGAIN || time.Now().After(deadline) {
			t.Fatalf("read: %v", err)
		}
	}
	if string(buf[:n]) != "hello" {
		t.Errorf("read %q", buf[:n])
	}
	c.Close()
	l.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("Close left the socket file")
	}

	// Never another kind of file.
	if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(Addr{Kind: Unix, Path: path}, 8); err == nil {
		t.Fatal("Listen replaced a regular file")
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Error("the regular file was touched")
	}
}

// TestVsockConnect connects to a listener through the vsock loopback
// transport. It runs only where VMINIT_VSOCK_LOOPBACK=1 says that
// vsock_loopback makes CID 1 the machine itself: these development machines
// have no loopback, and no vsock peer here is ours to call. Scenario 8 of
// bench/vm is where the listener and a dialer meet for real: vminit's
// listener and vminitctl, inside a QEMU guest with vsock_loopback loaded.
func TestVsockConnect(t *testing.T) {
	if os.Getenv("VMINIT_VSOCK_LOOPBACK") != "1" {
		t.Skip("connecting needs vsock loopback or a VM, which this machine lacks (bench/vm scenario 8 connects inside a guest; set VMINIT_VSOCK_LOOPBACK=1 where vsock_loopback is loaded)")
	}
	l, err := Listen(Addr{Kind: VSock, Port: AnyPort}, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Allow = func(p Peer) bool { return p.CID == CIDLocal }
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, &unix.SockaddrVM{CID: CIDLocal, Port: l.Addr().Port}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		c, peer, err := l.Accept()
		if err == unix.EAGAIN && time.Now().Before(deadline) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if peer.CID != CIDLocal {
			t.Errorf("peer CID %d, want 1", peer.CID)
		}
		c.Close()
		return
	}
}
