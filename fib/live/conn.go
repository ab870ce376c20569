package live

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// errDumpInterrupted reports a dump the kernel flagged NLM_F_DUMP_INTR:
// the objects changed while they were dumped, so the answer may be
// inconsistent.
var errDumpInterrupted = errors.New("netlink dump interrupted")

// recvBufSize is the receive buffer of a conn: the kernel fills a dump's
// reply up to 32 KiB per read, and a single message larger than this
// buffer is an error, not a silent truncation.
const recvBufSize = 64 << 10

// conn is a blocking NETLINK_ROUTE socket with one receive buffer for
// all its requests. vishvananda/netlink's sockets go through the Go
// poller (several fcntl and epoll calls each) and receive into a fresh
// 64 KiB array per read, which grows the goroutine's stack; the plugin
// opens two namespaces in a fresh process on every pod ADD, where those
// costs add up. A conn is not safe for concurrent use.
type conn struct {
	fd  int
	pid uint32
	seq uint32
	buf []byte
}

// newConn opens a NETLINK_ROUTE socket in the network namespace of the
// calling thread.
func newConn() (*conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		_ = unix.Close(fd) // never used: nothing to lose
		return nil, fmt.Errorf("bind netlink socket: %w", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		_ = unix.Close(fd) // never used: nothing to lose
		return nil, fmt.Errorf("netlink socket address: %w", err)
	}
	nsa, ok := sa.(*unix.SockaddrNetlink)
	if !ok {
		_ = unix.Close(fd) // never used: nothing to lose
		return nil, fmt.Errorf("netlink socket address of type %T", sa)
	}
	return &conn{fd: fd, pid: nsa.Pid}, nil
}

func (c *conn) close() {
	_ = unix.Close(c.fd) // a netlink socket: nothing buffered to lose
}

// execute sends a request and returns the payloads of the reply messages
// of type resType, each a copy the caller may keep. A request the kernel
// refuses returns its errno (a syscall.Errno); a dump flagged as
// interrupted returns errDumpInterrupted after its last message.
func (c *conn) execute(req *nl.NetlinkRequest, resType uint16) ([][]byte, error) {
	c.seq++
	req.Seq = c.seq
	b := req.Serialize()
	for {
		err := unix.Sendto(c.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EINTR) {
			return nil, fmt.Errorf("netlink send: %w", err)
		}
	}
	if c.buf == nil {
		c.buf = make([]byte, recvBufSize)
	}
	var (
		out  [][]byte
		intr bool
	)
	for {
		n, err := c.recv()
		if err != nil {
			return nil, err
		}
		// The payloads point into one copy of what this read returned:
		// the buffer is reused by the next read.
		data := append([]byte(nil), c.buf[:n]...)
		for len(data) > 0 {
			if len(data) < unix.SizeofNlMsghdr {
				return nil, fmt.Errorf("netlink reply: %d trailing bytes", len(data))
			}
			size := int(binary.NativeEndian.Uint32(data[0:4]))
			typ := binary.NativeEndian.Uint16(data[4:6])
			flags := binary.NativeEndian.Uint16(data[6:8])
			seq := binary.NativeEndian.Uint32(data[8:12])
			pid := binary.NativeEndian.Uint32(data[12:16])
			if size < unix.SizeofNlMsghdr || size > len(data) {
				return nil, fmt.Errorf("netlink reply: message of %d bytes in %d", size, len(data))
			}
			payload := data[unix.SizeofNlMsghdr:size]
			data = data[min(nlmsgAlign(size), len(data)):]
			if seq != req.Seq || pid != c.pid {
				continue // a reply to an earlier request
			}
			if flags&unix.NLM_F_DUMP_INTR != 0 {
				intr = true
			}
			switch typ {
			case unix.NLMSG_DONE, unix.NLMSG_ERROR:
				if len(payload) < 4 {
					if typ == unix.NLMSG_DONE {
						return done(out, intr)
					}
					return nil, fmt.Errorf("netlink error message of %d bytes", len(payload))
				}
				if errno := int32(binary.NativeEndian.Uint32(payload[0:4])); errno != 0 {
					return nil, syscall.Errno(-errno)
				}
				return done(out, intr)
			case resType:
				out = append(out, payload)
			}
			if flags&unix.NLM_F_MULTI == 0 && typ == resType {
				return done(out, intr)
			}
		}
	}
}

// done is execute's result once the reply ended.
func done(out [][]byte, intr bool) ([][]byte, error) {
	if intr {
		return out, errDumpInterrupted
	}
	return out, nil
}

// recv reads one datagram into the buffer and returns its length. A
// datagram larger than the buffer is an error (MSG_TRUNC reports its real
// length).
func (c *conn) recv() (int, error) {
	for {
		n, from, err := unix.Recvfrom(c.fd, c.buf, unix.MSG_TRUNC)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return 0, fmt.Errorf("netlink receive: %w", err)
		case !fromKernel(from):
			continue // not the kernel's: no answer to our request
		case n > len(c.buf):
			return 0, fmt.Errorf("netlink receive: message of %d bytes, larger than the buffer of %d", n, len(c.buf))
		}
		return n, nil
	}
}

// fromKernel reports whether a datagram came from the kernel (port 0).
func fromKernel(sa unix.Sockaddr) bool {
	nsa, ok := sa.(*unix.SockaddrNetlink)
	return ok && nsa.Pid == 0
}

// nlmsgAlign rounds a message length up to NLMSG_ALIGNTO (4).
func nlmsgAlign(n int) int {
	return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
}
