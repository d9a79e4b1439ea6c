package rawfile

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{0, 1, 4095, 4096, 4097, 100000} {
		want := bytes.Repeat([]byte("x"), size)
		p := filepath.Join(dir, "f")
		os.WriteFile(p, want, 0o644)
		got, err := ReadFile(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("size %d: got %d bytes, %v", size, len(got), err)
		}
	}
	if _, err := ReadFile(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Errorf("missing file: %v", err)
	}
	// /proc files report size 0 and must be read to their end.
	got, err := ReadFile("/proc/self/mountinfo")
	if err != nil || len(got) == 0 {
		t.Errorf("/proc/self/mountinfo: %d bytes, %v", len(got), err)
	}
}

func TestNames(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for i := range 500 {
		name := filepath.Join(dir, string(rune('a'+i%26))+string(rune('0'+i/26%10))+string(rune('A'+i/260)))
		os.WriteFile(name, nil, 0o644)
		want = append(want, filepath.Base(name))
	}
	got, err := Names(dir)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, slices.Compact(want)) {
		t.Errorf("got %d names, want %d", len(got), len(slices.Compact(want)))
	}
}
