package live

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/fibguard/fibguard/fib"
)

// ErrOverflow reports that the kernel dropped notifications (ENOBUFS): the
// subscriber fell behind, and anything may have changed since its last
// look. The subscription goes on; the caller reads the state again.
var ErrOverflow = errors.New("netlink notifications were dropped: the state must be read again")

// subscribeGroups are the notification groups a Subscription joins: every
// change of what a model holds that the kernel announces. Sysctls such as
// route_localnet are not announced (only those of RTNLGRP_*_NETCONF are),
// so a caller reads them again from time to time.
var subscribeGroups = []uint32{
	unix.RTNLGRP_LINK,
	unix.RTNLGRP_IPV4_IFADDR, unix.RTNLGRP_IPV6_IFADDR,
	unix.RTNLGRP_IPV4_ROUTE, unix.RTNLGRP_IPV6_ROUTE,
	unix.RTNLGRP_IPV4_RULE, unix.RTNLGRP_IPV6_RULE,
	unix.RTNLGRP_IPV4_NETCONF, unix.RTNLGRP_IPV6_NETCONF,
}

// subscribeRcvBuf is the receive buffer a Subscription asks for: a burst
// of route changes (a routing daemon installing a table) must not
// overflow it before the reader wakes up. The kernel caps the request at
// net.core.rmem_max unless the caller may exceed it (CAP_NET_ADMIN).
const subscribeRcvBuf = 8 << 20

// Change is one change of a namespace's network state, as the kernel
// announced it, in words a person reads in an Event: "address
// 10.244.0.5/32 added on eth0", "route 10.244.0.0/24 dev cni0 removed".
type Change struct {
	Text string
}

// Subscription receives the kernel's notifications of changes of a network
// namespace's links, addresses, routes, rules and announced sysctls. It is
// not safe for concurrent use, except Close, which unblocks Next.
type Subscription struct {
	t   *target
	f   *os.File
	buf []byte
	// links are the devices seen, by index, to say what changed on one
	// and to name it once it is gone.
	links map[int]fib.Link
}

// Subscribe subscribes to the changes of a network namespace ("" is the
// process's own, as for Open). Close releases it.
func Subscribe(netns string) (*Subscription, error) {
	s := &Subscription{buf: make([]byte, recvBufSize), links: map[int]fib.Link{}}
	t, err := open(netns, func(t *target) error {
		f, err := subscribedSocket()
		s.f = f
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	s.t = t
	links, _, err := t.loadLinks()
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	for _, l := range links {
		s.links[l.Index] = l
	}
	return s, nil
}

// subscribedSocket opens a non-blocking NETLINK_ROUTE socket in the
// calling thread's namespace that has joined subscribeGroups. It is read
// through the runtime's poller, so that Close unblocks a reader.
func subscribedSocket() (*os.File, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	setup := func() error {
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return fmt.Errorf("bind netlink socket: %w", err)
		}
		for _, g := range subscribeGroups {
			if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, int(g)); err != nil {
				return fmt.Errorf("join netlink group %d: %w", g, err)
			}
		}
		// Best effort: the larger buffer only makes overflows rarer.
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, subscribeRcvBuf) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, subscribeRcvBuf)
		}
		return nil
	}
	if err := setup(); err != nil {
		_ = unix.Close(fd) // never used: nothing to lose
		return nil, err
	}
	return os.NewFile(uintptr(fd), "netlink-subscription"), nil
}

// Close ends the subscription; a Next blocked meanwhile returns
// os.ErrClosed. Closing twice does nothing.
func (s *Subscription) Close() {
	if s.f != nil {
		_ = s.f.Close() // a socket: nothing buffered to lose
	}
	if s.t != nil {
		s.t.close()
		s.t = nil
	}
}

// Next waits for the kernel's next notification and returns the changes it
// announces (none for a notification of no interest, such as a cloned
// route). ErrOverflow means notifications were lost; os.ErrClosed, that
// the subscription was closed.
func (s *Subscription) Next() ([]Change, error) {
	n, err := s.f.Read(s.buf)
	if errors.Is(err, unix.ENOBUFS) {
		return nil, ErrOverflow
	}
	if err != nil {
		return nil, fmt.Errorf("read netlink notifications: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(s.buf[:n])
	if err != nil {
		return nil, fmt.Errorf("parse netlink notifications: %w", err)
	}
	var out []Change
	for _, m := range msgs {
		text, err := s.describe(m)
		if err != nil {
			return out, fmt.Errorf("netlink notification %d: %w", m.Header.Type, err)
		}
		if text != "" {
			out = append(out, Change{Text: text})
		}
	}
	return out, nil
}

// describe says in words what one notification changed, "" when it is of
// no interest.
func (s *Subscription) describe(m syscall.NetlinkMessage) (string, error) {
	switch m.Header.Type {
	case unix.RTM_NEWLINK, unix.RTM_DELLINK:
		return s.describeLink(m.Header.Type == unix.RTM_NEWLINK, m.Data)
	case unix.RTM_NEWADDR, unix.RTM_DELADDR:
		return s.describeAddr(m.Header.Type == unix.RTM_NEWADDR, m.Data)
	case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
		return s.describeRoute(m.Header.Type == unix.RTM_NEWROUTE, m.Data)
	case unix.RTM_NEWRULE, unix.RTM_DELRULE:
		r, err := parseRule(m.Data)
		if err != nil {
			return "", err
		}
		return "rule " + strings.ReplaceAll(r.String(), "\t", " ") + addedOrRemoved(m.Header.Type == unix.RTM_NEWRULE), nil
	case unix.RTM_NEWNETCONF, unix.RTM_DELNETCONF:
		return s.describeNetconf(m.Data), nil
	}
	return "", nil
}

func addedOrRemoved(added bool) string {
	if added {
		return " added"
	}
	return " removed"
}

// describeLink: a device added, removed, up, down, losing or regaining its
// carrier, or otherwise changed (its master, its settings).
func (s *Subscription) describeLink(added bool, data []byte) (string, error) {
	l, _, err := parseLink(data)
	if err != nil {
		return "", err
	}
	old, known := s.links[l.Index]
	if !added {
		delete(s.links, l.Index)
		return "link " + l.Name + " removed", nil
	}
	s.links[l.Index] = l
	switch {
	case !known:
		return "link " + l.Name + " added", nil
	case old.Name != l.Name:
		return "link " + old.Name + " renamed to " + l.Name, nil
	case old.Up != l.Up:
		return "link " + l.Name + " set " + map[bool]string{true: "up", false: "down"}[l.Up], nil
	case old.Carrier != l.Carrier:
		return "link " + l.Name + map[bool]string{true: " gained", false: " lost"}[l.Carrier] + " its carrier", nil
	}
	return "link " + l.Name + " changed", nil
}

func (s *Subscription) describeAddr(added bool, data []byte) (string, error) {
	a, err := parseAddr(data)
	if err != nil || !a.prefix.IsValid() {
		return "", err
	}
	where := " on "
	if !added {
		where = " from "
	}
	text := "address " + a.prefix.String()
	if a.peer.IsValid() {
		text += " peer " + a.peer.String()
	}
	return text + addedOrRemoved(added) + where + s.linkName(a.index), nil
}

// describeRoute: a route with its table, as fib.Route prints it. Routes the kernel clones into its cache are of no interest.
func (s *Subscription) describeRoute(added bool, data []byte) (string, error) {
	hdr, _, err := parseMsg(data)
	if err != nil {
		return "", err
	}
	if hdr.Flags&unix.RTM_F_CLONED != 0 {
		return "", nil
	}
	r, err := parseRoute(data, func(i int) (string, error) { return s.linkName(i), nil })
	if err != nil {
		return "", err
	}
	text, err := r.MarshalText()
	if err != nil {
		return "", fmt.Errorf("formatting a route: %w", err)
	}
	// As `ip route` prints it, which leaves out the usual type.
	return "route " + strings.TrimPrefix(string(text), "unicast ") + addedOrRemoved(added), nil
}

// NETCONFA_* of linux/netconf.h, not in golang.org/x/sys/unix.
const (
	netconfaIfindex        = 1
	netconfaIfindexAll     = -1
	netconfaIfindexDefault = -2
)

// describeNetconf: an announced sysctl (forwarding, rp_filter, ...) of a
// device, of "all" or of "default" changed.
func (s *Subscription) describeNetconf(data []byte) string {
	if len(data) < 4 {
		return ""
	}
	family := map[uint8]string{unix.AF_INET: "ipv4", unix.AF_INET6: "ipv6"}[data[0]]
	attrs, err := parseAttrs(data[4:])
	if err != nil || family == "" {
		return ""
	}
	dev := "?"
	for _, a := range attrs {
		if a.Attr.Type == netconfaIfindex {
			i, err := attrU32(a)
			if err != nil {
				return ""
			}
			switch int32(i) {
			case netconfaIfindexAll:
				dev = "all"
			case netconfaIfindexDefault:
				dev = "default"
			default:
				dev = s.linkName(int(i))
			}
		}
	}
	return "net." + family + ".conf." + dev + " settings changed"
}

// linkName names a device by index: from the notifications seen, else by
// asking the kernel, else by its index.
func (s *Subscription) linkName(index int) string {
	if l, ok := s.links[index]; ok {
		return l.Name
	}
	if s.t != nil {
		if name, err := s.t.linkName(index); err == nil {
			return name
		}
	}
	return fmt.Sprintf("if%d", index)
}
