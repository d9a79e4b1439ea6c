package evdev

import (
	"encoding/binary"
	"unsafe"
)

// Event types and codes of include/uapi/linux/input-event-codes.h that the
// package uses.
const (
	EvSyn    = 0x00
	EvKey    = 0x01
	KeyPower = 116
	keyMax   = 0x2ff
)

// Event is one struct input_event.
type Event struct {
	Sec, Usec int64 // the kernel's timestamp (CLOCK_REALTIME unless changed with EVIOCSCLOCKID)
	Type      uint16
	Code      uint16
	Value     int32 // for EV_KEY: 1 press, 0 release, 2 autorepeat
}

// Pressed reports whether e is a press of key code.
func (e Event) Pressed(code uint16) bool { return e.Type == EvKey && e.Code == code && e.Value == 1 }

// wordSize is the size of the kernel's long on this architecture: struct
// input_event starts with two of them (a struct timeval, or __sec and __usec
// where user space has a 64-bit time_t on a 32-bit kernel).
const wordSize = int(unsafe.Sizeof(uintptr(0)))

// eventSize is the size of struct input_event for a given word size.
func eventSize(word int) int { return 2*word + 8 }

// decode appends to evs the events in b, which holds whole struct
// input_events of a kernel with the given word size, in this machine's byte
// order. A trailing partial event (which read(2) on an evdev device never
// returns) is ignored.
func decode(evs []Event, b []byte, word int) []Event {
	size := eventSize(word)
	for ; len(b) >= size; b = b[size:] {
		var e Event
		if word == 8 {
			e.Sec = int64(binary.NativeEndian.Uint64(b[0:]))
			e.Usec = int64(binary.NativeEndian.Uint64(b[8:]))
		} else {
			e.Sec = int64(int32(binary.NativeEndian.Uint32(b[0:])))
			e.Usec = int64(int32(binary.NativeEndian.Uint32(b[4:])))
		}
		t := b[2*word:]
		e.Type = binary.NativeEndian.Uint16(t[0:])
		e.Code = binary.NativeEndian.Uint16(t[2:])
		e.Value = int32(binary.NativeEndian.Uint32(t[4:]))
		evs = append(evs, e)
	}
	return evs
}

// encode is decode's inverse, for tests.
func encode(b []byte, e Event, word int) []byte {
	if word == 8 {
		b = binary.NativeEndian.AppendUint64(b, uint64(e.Sec))
		b = binary.NativeEndian.AppendUint64(b, uint64(e.Usec))
	} else {
		b = binary.NativeEndian.AppendUint32(b, uint32(e.Sec))
		b = binary.NativeEndian.AppendUint32(b, uint32(e.Usec))
	}
	b = binary.NativeEndian.AppendUint16(b, e.Type)
	b = binary.NativeEndian.AppendUint16(b, e.Code)
	return binary.NativeEndian.AppendUint32(b, uint32(e.Value))
}

// testBit reports whether bit n is set in a bitmap that the kernel copied
// out as an array of longs (EVIOCGBIT): bit n is bit n%bits of long
// n/bits, in this machine's byte order.
func testBit(bitmap []byte, n, word int) bool {
	bits := 8 * word
	i := n / bits * word
	if n < 0 || i+word > len(bitmap) {
		return false
	}
	var long uint64
	if word == 8 {
		long = binary.NativeEndian.Uint64(bitmap[i:])
	} else {
		long = uint64(binary.NativeEndian.Uint32(bitmap[i:]))
	}
	return long&(1<<(n%bits)) != 0
}

// bitmapSize is the size in bytes of a bitmap of n+1 bits as the kernel
// copies it: whole longs.
func bitmapSize(n, word int) int {
	bits := 8 * word
	return (n/bits + 1) * word
}
