package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseTarget(t *testing.T) {
	for in, want := range map[string]target{
		"vsock://3:10240":           {raw: "vsock://3:10240", scheme: "vsock", cid: 3, port: 10240},
		"hybrid:///run/fc.vsock:52": {raw: "hybrid:///run/fc.vsock:52", scheme: "hybrid", path: "/run/fc.vsock", port: 52},
		"hybrid://a:b/v.sock:1":     {raw: "hybrid://a:b/v.sock:1", scheme: "hybrid", path: "a:b/v.sock", port: 1},
		"unix:///tmp/ctl.sock":      {raw: "unix:///tmp/ctl.sock", scheme: "unix", path: "/tmp/ctl.sock"},
	} {
		got, err := parseTarget(in)
		if err != nil || got != want {
			t.Errorf("parseTarget(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "3:10240", "vsock://3", "vsock://x:1", "vsock://3:99999999999", "hybrid:///run/fc.vsock", "tcp://1.2.3.4:5", "unix://"} {
		if got, err := parseTarget(bad); err == nil {
			t.Errorf("parseTarget(%q) = %+v, want an error", bad, got)
		}
	}
}

// fakeGuest serves one scripted exchange per connection on a Unix socket: it
// reads the request line, writes the lines, then closes (or, if hang, keeps
// the connection open until the client closes it).
func fakeGuest(t *testing.T, lines []string, hang bool) string {
	t.Helper()
	return "unix://" + serveUnix(t, "guest.sock", func(c net.Conn) {
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			return
		}
		for _, l := range lines {
			io.WriteString(c, l+"\n")
		}
		if hang {
			io.Copy(io.Discard, c)
		}
	})
}

// serveUnix listens on a Unix socket named name in a test directory, and
// serves each connection with handle on a goroutine (then closes it).
func serveUnix(t *testing.T, name string, handle func(c net.Conn)) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return path
}

const (
	accepted = `{"event":"accepted","mono_ns":1,"grace_ns":1000000000,"command":"poweroff","phase":"terminating"}`
	trigger  = `{"event":"trigger","mono_ns":2,"source":"control"}`
	sigterm  = `{"event":"sigterm","mono_ns":3,"grace_ns":1000000000}`
	reaped   = `{"event":"reaped","mono_ns":4,"pid":2,"comm":"app","status":0}`
	expired  = `{"event":"grace_expired","mono_ns":5,"survivors":[{"pid":3,"comm":"stubborn"}]}`
	sigkill  = `{"event":"sigkill","mono_ns":6}`
	syncS    = `{"event":"sync","mono_ns":7,"step":"start"}`
	reboot   = `{"event":"reboot","mono_ns":8,"command":"poweroff"}`
)

func runCtl(t *testing.T, args ...string) (code int, stdout, stderr string, took time.Duration) {
	t.Helper()
	var o, e bytes.Buffer
	start := time.Now()
	done := make(chan int, 1)
	go func() { done <- run(context.Background(), args, &o, &e) }()
	select {
	case code = <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("vminitctl %v: still running after 30s", args)
	}
	return code, o.String(), e.String(), time.Since(start)
}

// TestExitCodes exercises every exit status against scripted guests.
func TestExitCodes(t *testing.T) {
	missing := "unix://" + filepath.Join(t.TempDir(), "nobody.sock")
	for _, tc := range []struct {
		name string
		args []string
		code int
		say  string // in the output
	}{
		{"ping", []string{"ping", "--to", fakeGuest(t, []string{`{"event":"pong","mono_ns":1}`}, false)}, exitOK, "pong from"},
		{"status", []string{"status", "--to", fakeGuest(t, []string{`{"event":"status","mono_ns":1,"procs":3,"workload":"running","pid":2,"phase":"running"}`}, false)}, exitOK, "procs=3"},
		{"graceful", []string{"shutdown", "--to", fakeGuest(t, []string{accepted, trigger, sigterm, reaped, syncS, reboot}, false)}, exitOK, "all exited on SIGTERM"},
		{"SIGKILL needed", []string{"shutdown", "--to", fakeGuest(t, []string{accepted, trigger, sigterm, expired, sigkill, reaped, syncS, reboot}, false)}, exitKilled, "3(stubborn)"},
		{"usage: no target", []string{"shutdown"}, exitUsage, "no --to"},
		{"usage: verb", []string{"explode", "--to", missing}, exitUsage, "unknown command"},
		{"usage: grace on ping", []string{"ping", "--grace", "1s", "--to", missing}, exitUsage, "--grace"},
		{"usage: reboot halt", []string{"reboot", "--final", "halt", "--to", missing}, exitUsage, "restart"},
		{"usage: bad address", []string{"ping", "--to", "tcp://1.2.3.4:5"}, exitUsage, "unknown scheme"},
		{"unreachable", []string{"ping", "--to", missing}, exitUnreachable, "no such file"},
		{"silent guest", []string{"ping", "--timeout", "300ms", "--to", fakeGuest(t, nil, true)}, exitUnreachable, "timed out"},
		{"error reply", []string{"shutdown", "--to", fakeGuest(t, []string{`{"event":"error","mono_ns":1,"error":"busy"}`}, false)}, exitProtocol, "busy"},
		{"garbage", []string{"ping", "--to", fakeGuest(t, []string{"HTTP/1.1 400 Bad Request"}, false)}, exitProtocol, "garbage"},
		{"EOF before reboot", []string{"shutdown", "--to", fakeGuest(t, []string{accepted, trigger, sigterm}, false)}, exitProtocol, "ended before the reboot event"},
		{"wrong reply", []string{"ping", "--to", fakeGuest(t, []string{accepted}, false)}, exitProtocol, "replied accepted"},
		{"fan-out: worst", []string{"ping", "--to", fakeGuest(t, []string{`{"event":"pong","mono_ns":1}`}, false), "--to", missing}, exitUnreachable, "1 of 2 done"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut, took := runCtl(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			if !strings.Contains(out+errOut, tc.say) {
				t.Errorf("output lacks %q\nstdout:\n%s\nstderr:\n%s", tc.say, out, errOut)
			}
			if tc.code == exitUnreachable && took > 5*time.Second {
				t.Errorf("took %v to give up", took)
			}
		})
	}
}

// TestInterrupted: SIGINT or SIGTERM (the context) ends a wait for the
// stream at once: inside a guest, the shutdown vminitctl asked for sends it
// SIGTERM like every other process.
func TestInterrupted(t *testing.T) {
	g := fakeGuest(t, []string{accepted, trigger, sigterm}, true)
	ctx, cancel := context.WithCancel(context.Background())
	var o, e bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"shutdown", "--json", "--to", g}, &o, &e) }()
	time.Sleep(200 * time.Millisecond) // the stream has begun, and stalls
	cancel()
	select {
	case code := <-done:
		if code != exitUnreachable || !strings.Contains(e.String(), "interrupted") {
			t.Errorf("exit %d, stderr %q: want 3, interrupted", code, e.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still waiting 5s after the interruption")
	}
}

func TestToFileAndJSON(t *testing.T) {
	g := fakeGuest(t, []string{`{"event":"pong","mono_ns":1}`}, false)
	file := filepath.Join(t.TempDir(), "targets")
	os.WriteFile(file, []byte("# VMs\n"+g+"\n\n"+g+"\n"), 0o644)
	code, out, errOut, _ := runCtl(t, "ping", "--json", "--to-file", file)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], `{"to":"`+g+`","event":"pong"`) {
		t.Errorf("fan-out JSON:\n%s", out)
	}
}

// firecracker is a test double of a Firecracker / Cloud Hypervisor hybrid
// vsock device: clients connect to its Unix socket and write "CONNECT
// <port>\n"; if the guest listens on that port (here: a Unix socket the
// double relays to), it answers "OK <n>\n" and relays both ways; if not, it
// closes the connection without a word, which also drops a CONNECT that
// arrives before the guest listens.
func firecracker(t *testing.T, guest func(port uint32) string) string {
	t.Helper()
	return serveUnix(t, "v.sock", func(c net.Conn) {
		var port uint32
		line, err := readLineByte(c)
		if err != nil {
			return
		}
		if _, err := fmt.Sscanf(line, "CONNECT %d", &port); err != nil {
			return
		}
		g, err := net.Dial("unix", guest(port))
		if err != nil {
			return // nothing listens: close without a word
		}
		defer g.Close()
		io.WriteString(c, "OK 1073741824\n")
		go func() {
			io.Copy(g, c)
			g.(*net.UnixConn).CloseWrite() // the host's half-close reaches the guest
		}()
		io.Copy(c, g)
	})
}

func readLineByte(c net.Conn) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for {
		if _, err := c.Read(one); err != nil {
			return "", err
		}
		if one[0] == '\n' {
			return string(b), nil
		}
		b = append(b, one[0])
	}
}

func TestHybridNoListener(t *testing.T) {
	fc := firecracker(t, func(uint32) string { return "/nonexistent" })
	code, _, errOut, took := runCtl(t, "ping", "--timeout", "500ms", "--to", "hybrid://"+fc+":10240")
	if code != exitUnreachable || !strings.Contains(errOut, "nothing listens") {
		t.Fatalf("exit %d, stderr %q: want 3 and a clear message", code, errOut)
	}
	if took < 500*time.Millisecond || took > 5*time.Second {
		t.Errorf("gave up after %v, want after the 500ms timeout", took)
	}
}

func TestHybridRetriesUntilListening(t *testing.T) {
	dir := t.TempDir()
	guestSock := filepath.Join(dir, "guest.sock")
	fc := firecracker(t, func(uint32) string { return guestSock })
	go func() {
		time.Sleep(300 * time.Millisecond) // the guest is still booting
		ln, err := net.Listen("unix", guestSock)
		if err != nil {
			return
		}
		defer ln.Close()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		bufio.NewReader(c).ReadString('\n')
		io.WriteString(c, `{"event":"pong","mono_ns":1}`+"\n")
		io.Copy(io.Discard, c)
	}()
	code, out, errOut, took := runCtl(t, "ping", "--timeout", "5s", "--to", "hybrid://"+fc+":10240")
	if code != exitOK || !strings.Contains(out, "pong") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if took < 300*time.Millisecond {
		t.Errorf("answered after %v, before the guest listened", took)
	}
}
