//go:build !linux

package main

import (
	"errors"
	"io"
)

type bins struct{}

func runMatrix(matrix, uint64, *bins, io.Writer) (*Result, error) {
	return nil, errors.New("the benchmark runs PID 1 in Linux namespaces: Linux only (-replot works anywhere)")
}
