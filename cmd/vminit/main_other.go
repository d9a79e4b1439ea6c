//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "vminit: runs on Linux only (it is the init of a Linux VM)")
	os.Exit(1)
}
