//go:build unix

package holdback

import (
	"net"
	"os"
	"syscall"
)

// rawReader reads a socket as net.TCPConn does, and tells when it found the socket empty.
type rawReader interface {
	read(p []byte, empty func()) (int, error)
}

type sysReader struct{ rc syscall.RawConn }

func newRawReader(c net.Conn) rawReader {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return sysReader{rc}
}

// read returns the bytes read, 0 at the end of the stream, or the error (os.ErrDeadlineExceeded
// past a deadline, net.ErrClosed after a close, the system call's).
func (s sysReader) read(p []byte, empty func()) (int, error) {
	var n int
	var errno error
	err := s.rc.Read(func(fd uintptr) bool {
		for {
			n, errno = syscall.Read(int(fd), p)
			if errno != syscall.EINTR {
				break
			}
		}
		if errno == syscall.EAGAIN {
			empty() // the poller waits for more: exec-proxy's receive queue is empty
			return false
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	if errno != nil {
		return 0, os.NewSyscallError("read", errno)
	}
	return n, nil
}
