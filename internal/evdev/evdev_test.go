package evdev

import (
	"encoding/binary"
	"slices"
	"testing"
)

func TestDecode(t *testing.T) {
	in := []Event{
		{Sec: 1700000000, Usec: 123456, Type: EvKey, Code: KeyPower, Value: 1},
		{Sec: 1700000000, Usec: 123457, Type: EvSyn},
		{Sec: 1700000000, Usec: 223457, Type: EvKey, Code: KeyPower, Value: 0},
		{Sec: -1, Usec: 999999, Type: 0xffff, Code: 0xffff, Value: -2},
	}
	for _, word := range []int{4, 8} {
		var b []byte
		for _, e := range in {
			b = encode(b, e, word)
		}
		if len(b) != len(in)*eventSize(word) {
			t.Fatalf("word %d: %d bytes for %d events", word, len(b), len(in))
		}
		got := decode(nil, append(b, 1, 2, 3), word) // a partial event is ignored
		if !slices.Equal(got, in) {
			t.Errorf("word %d:\n got %+v\nwant %+v", word, got, in)
		}
	}
	if eventSize(8) != 24 || eventSize(4) != 16 {
		t.Error("struct input_event is 24 bytes on 64-bit kernels and 16 on 32-bit ones")
	}
}

func TestPressed(t *testing.T) {
	for _, tc := range []struct {
		e    Event
		want bool
	}{
		{Event{Type: EvKey, Code: KeyPower, Value: 1}, true},
		{Event{Type: EvKey, Code: KeyPower, Value: 0}, false}, // release
		{Event{Type: EvKey, Code: KeyPower, Value: 2}, false}, // autorepeat
		{Event{Type: EvKey, Code: 115, Value: 1}, false},
		{Event{Type: EvSyn, Code: KeyPower, Value: 1}, false},
	} {
		if got := tc.e.Pressed(KeyPower); got != tc.want {
			t.Errorf("%+v: Pressed = %v", tc.e, got)
		}
	}
}

// longs lays out a bitmap as the kernel copies it: an array of longs in
// this machine's byte order.
func longs(word int, set ...int) []byte {
	b := make([]byte, bitmapSize(keyMax, word))
	for _, n := range set {
		i := n / (8 * word) * word
		if word == 8 {
			v := binary.NativeEndian.Uint64(b[i:])
			binary.NativeEndian.PutUint64(b[i:], v|1<<(n%64))
		} else {
			v := binary.NativeEndian.Uint32(b[i:])
			binary.NativeEndian.PutUint32(b[i:], v|1<<(n%32))
		}
	}
	return b
}

func TestTestBit(t *testing.T) {
	for _, word := range []int{4, 8} {
		b := longs(word, 0, KeyPower, keyMax)
		for n := 0; n <= keyMax; n++ {
			want := n == 0 || n == KeyPower || n == keyMax
			if got := testBit(b, n, word); got != want {
				t.Errorf("word %d: bit %d = %v", word, n, got)
			}
		}
		if testBit(b, keyMax+64, word) || testBit(b, -1, word) {
			t.Errorf("word %d: a bit outside the bitmap reads as set", word)
		}
	}
	if bitmapSize(keyMax, 8) != 96 || bitmapSize(keyMax, 4) != 96 || bitmapSize(0x1f, 8) != 8 {
		t.Error("bitmap sizes")
	}
}
