package evdev

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Device is an open evdev device. Its methods must not be called
// concurrently with Close.
type Device struct {
	fd   int
	path string
	name string
	buf  []byte
}

// readBatch is how many events one Read takes at most.
const readBatch = 64

// Open opens the evdev device at path, O_RDONLY|O_NONBLOCK|O_CLOEXEC, and
// reads its name (EVIOCGNAME). Close must be called to release it.
func Open(path string) (d *Device, err error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()
	name := make([]byte, 256)
	if err := ioctl(fd, ioc(iocRead, 'E', 0x06, len(name)), name); err != nil {
		return nil, fmt.Errorf("evdev: %s: %w", path, os.NewSyscallError("ioctl EVIOCGNAME", err))
	}
	return &Device{
		fd:   fd,
		path: path,
		name: unix.ByteSliceToString(name),
		buf:  make([]byte, readBatch*eventSize(wordSize)),
	}, nil
}

// Fd returns the descriptor, for an epoll set (EPOLLIN when events are
// queued). It stays owned by the Device.
func (d *Device) Fd() int { return d.fd }

// Path returns the path the device was opened at.
func (d *Device) Path() string { return d.path }

// Name returns the device's name as its driver reports it ("Power Button").
func (d *Device) Name() string { return d.name }

// HasKey reports whether the device can report key code (EVIOCGBIT for
// EV_KEY, then for the key).
func (d *Device) HasKey(code int) (bool, error) {
	types := make([]byte, bitmapSize(0x1f, wordSize)) // EV_MAX
	if err := ioctl(d.fd, ioc(iocRead, 'E', 0x20, len(types)), types); err != nil {
		return false, os.NewSyscallError("ioctl EVIOCGBIT", err)
	}
	if !testBit(types, EvKey, wordSize) {
		return false, nil
	}
	keys := make([]byte, bitmapSize(keyMax, wordSize))
	if err := ioctl(d.fd, ioc(iocRead, 'E', 0x20+EvKey, len(keys)), keys); err != nil {
		return false, os.NewSyscallError("ioctl EVIOCGBIT(EV_KEY)", err)
	}
	return testBit(keys, code, wordSize), nil
}

// Read reads the events queued on the device with one read(2), appending
// them to evs[:0]. With nothing queued it returns no events and no error
// (EAGAIN). An error means the device is unusable (ENODEV once it is gone):
// the caller should remove and close it.
func (d *Device) Read(evs []Event) ([]Event, error) {
	evs = evs[:0]
	for {
		n, err := unix.Read(d.fd, d.buf)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return evs, nil
		case err != nil:
			return evs, fmt.Errorf("evdev: %s: %w", d.path, os.NewSyscallError("read", err))
		case n == 0:
			return evs, fmt.Errorf("evdev: %s: end of file", d.path)
		}
		return decode(evs, d.buf[:n], wordSize), nil
	}
}

// Close closes the device. A second Close returns os.ErrClosed.
func (d *Device) Close() error {
	if d.fd < 0 {
		return os.ErrClosed
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return os.NewSyscallError("close", err)
}

// PowerButtons opens every event device in dir (normally /dev/input) that
// can report KEY_POWER and returns them, in name order. Devices that cannot
// be opened or asked are left out, and reported in the error, which is
// non-nil only then; a dir that does not exist (no evdev driver) is no
// device and no error.
func PowerButtons(dir string) ([]*Device, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "event*"))
	if err != nil {
		return nil, err
	}
	sort.Slice(paths, func(i, j int) bool { return eventNumber(paths[i]) < eventNumber(paths[j]) })
	var found []*Device
	var errs []error
	for _, p := range paths {
		d, err := Open(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ok, err := d.HasKey(KeyPower)
		if err != nil {
			errs = append(errs, fmt.Errorf("evdev: %s: %w", p, err))
		}
		if !ok {
			d.Close()
			continue
		}
		found = append(found, d)
	}
	return found, errors.Join(errs...)
}

// eventNumber returns N of .../eventN, so that event10 sorts after event9.
func eventNumber(path string) int {
	var n int
	if _, err := fmt.Sscanf(filepath.Base(path), "event%d", &n); err != nil {
		return -1
	}
	return n
}

// The ioctl request encoding of include/uapi/asm-generic/ioctl.h, which x86,
// arm64 and riscv use.
const (
	iocRead      = 2
	iocNRShift   = 0
	iocTypeShift = 8
	iocSizeShift = 16
	iocDirShift  = 30
)

func ioc(dir, typ, nr, size int) uintptr {
	return uintptr(dir<<iocDirShift | typ<<iocTypeShift | nr<<iocNRShift | size<<iocSizeShift)
}

// ioctl calls ioctl(2) with a buffer the kernel fills.
func ioctl(fd int, req uintptr, buf []byte) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(&buf[0])))
	if errno != 0 {
		return errno
	}
	return nil
}
