//go:build !linux

package rawfile

import "os"

// ReadFile returns the contents of a file.
func ReadFile(path string) ([]byte, error) { return os.ReadFile(path) }

// Names returns the names in a directory.
func Names(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}
