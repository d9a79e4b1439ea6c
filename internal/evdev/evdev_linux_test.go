package evdev

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// pipeDevice returns a Device reading the non-blocking read end of a pipe,
// and the write end: read(2) on it behaves as on an evdev device that
// delivers whole events.
func pipeDevice(t *testing.T) (*Device, int) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	d := &Device{fd: p[0], path: "pipe", buf: make([]byte, readBatch*eventSize(wordSize))}
	t.Cleanup(func() {
		d.Close()
		unix.Close(p[1])
	})
	return d, p[1]
}

func TestRead(t *testing.T) {
	d, w := pipeDevice(t)
	evs, err := d.Read(nil)
	if err != nil || len(evs) != 0 {
		t.Fatalf("empty: %v %v, want nothing and no error", evs, err)
	}
	var b []byte
	press := Event{Sec: 5, Usec: 6, Type: EvKey, Code: KeyPower, Value: 1}
	for _, e := range []Event{press, {Type: EvSyn}, {Type: EvKey, Code: KeyPower}} {
		b = encode(b, e, wordSize)
	}
	if _, err := unix.Write(w, b); err != nil {
		t.Fatal(err)
	}
	evs, err = d.Read(evs)
	if err != nil || len(evs) != 3 || evs[0] != press || !evs[0].Pressed(KeyPower) {
		t.Fatalf("got %+v %v", evs, err)
	}
	evs, err = d.Read(evs)
	if err != nil || len(evs) != 0 {
		t.Fatalf("drained: %v %v", evs, err)
	}
	unix.Close(w)
	if _, err := d.Read(evs); err == nil {
		t.Error("no error at end of file")
	}
}

func TestClose(t *testing.T) {
	d, _ := pipeDevice(t)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close: %v, want os.ErrClosed", err)
	}
}

func TestOpenNotEvdev(t *testing.T) {
	_, err := Open("/dev/null")
	if !errors.Is(err, unix.ENOTTY) {
		t.Errorf("Open(/dev/null): %v, want ENOTTY from EVIOCGNAME", err)
	}
}

func TestPowerButtonsNone(t *testing.T) {
	devs, err := PowerButtons(filepath.Join(t.TempDir(), "no-such-dir"))
	if err != nil || len(devs) != 0 {
		t.Errorf("missing dir: %v %v, want nothing and no error", devs, err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "event3"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	devs, err = PowerButtons(dir)
	if len(devs) != 0 || err == nil || !strings.Contains(err.Error(), "event3") {
		t.Errorf("a file that is no device: %v %v, want nothing and an error naming it", devs, err)
	}
}

func TestEventNumberOrder(t *testing.T) {
	if eventNumber("/dev/input/event10") != 10 || eventNumber("/dev/input/event9") != 9 || eventNumber("/dev/input/mice") != -1 {
		t.Error("eventNumber")
	}
}
