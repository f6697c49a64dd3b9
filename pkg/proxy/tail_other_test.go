//go:build !linux

package proxy

import (
	"context"
	"errors"
	"io"
)

func flood(context.Context, io.Writer, int) error { return errors.New("flood: Linux only") }
