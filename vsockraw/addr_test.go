package vsockraw

import "testing"

func TestParseAddr(t *testing.T) {
	for in, want := range map[string]Addr{
		"vsock:10240":              {Kind: VSock, Port: 10240},
		"unix:/run/vminit.sock":    {Kind: Unix, Path: "/run/vminit.sock"},
		"unix:/tmp/../run/x.sock":  {Kind: Unix, Path: "/run/x.sock"},
		"vport:org.vminit.control": {Kind: Port, Path: "/dev/virtio-ports/org.vminit.control"},
		"vport:/dev/vport0p1":      {Kind: Port, Path: "/dev/vport0p1"},
	} {
		got, err := ParseAddr(in)
		if err != nil || got != want {
			t.Errorf("ParseAddr(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if again, err := ParseAddr(got.String()); err != nil || again != got {
			t.Errorf("%q: String %q does not parse back: %+v, %v", in, got.String(), again, err)
		}
	}
	for _, bad := range []string{"", "vsock", "vsock:", "vsock:x", "vsock:-1", "vsock:4294967296", "unix:relative.sock", "vport:a/b", "tcp:80", "10240"} {
		if a, err := ParseAddr(bad); err == nil {
			t.Errorf("ParseAddr(%q) = %+v, want an error", bad, a)
		}
	}
}
