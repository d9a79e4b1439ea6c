//go:build !linux

package main

import (
	"context"
	"errors"
)

func dialVsock(context.Context, uint32, uint32) (stream, error) {
	return nil, errors.New("vsock:// needs Linux: use hybrid:// or unix://")
}
