// Package live reads the routing state of a live network namespace over
// netlink and procfs into a fib.Model, and asks the kernel itself how it
// routes a packet, so the model's answers can be checked against the
// kernel's.
//
// Every function takes the namespace as "" (the namespace of the process),
// a path (/proc/PID/ns/net, /var/run/netns/NAME), or a name under
// /var/run/netns. Netlink sockets are created inside the namespace and
// procfs is read from a locked thread that entered it; no thread that other
// goroutines use changes namespace. Reading another namespace needs
// CAP_SYS_ADMIN.
package live

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/fibguard/fibguard/fib"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// loadAttempts bounds how often Load starts over when a dump names a
// device the link dump did not have (a device was added meanwhile).
const loadAttempts = 3

// errChanged reports that the namespace changed between two dumps.
var errChanged = errors.New("namespace changed while it was read")

// Load reads the links, addresses, routes of every table, rules, IPv4
// device sysctls and merged state of the local and main tables of a
// network namespace. Addresses and routes keep the kernel's dump order,
// IPv4 before IPv6.
func Load(netns string) (*fib.Model, error) {
	t, err := open(netns)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer t.close()
	for attempt := 1; ; attempt++ {
		m, err := t.load()
		if errors.Is(err, errChanged) && attempt < loadAttempts {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", t, err)
		}
		return m, nil
	}
}

func (t *target) load() (*fib.Model, error) {
	m := &fib.Model{}
	name, devs, err := t.loadBase(m)
	if err != nil {
		return nil, err
	}
	for _, f := range []fib.Family{fib.V4, fib.V6} {
		routes, err := t.loadRoutes(f, name)
		if err != nil {
			return nil, err
		}
		m.Routes = append(m.Routes, routes...)
	}
	st, err := t.readProc(devs, true)
	if err != nil {
		return nil, err
	}
	m.Conf = st.conf
	m.Unmerged = unmerged(st.trie, m.Rules)
	return m, nil
}

// loadBase reads what Load and LoadFor both take whole into m: the links,
// the addresses and the rules of both families. It returns the namer of
// the links it read, which fails with errChanged for an index it did not
// see, and the device names.
func (t *target) loadBase(m *fib.Model) (linkNamer, []string, error) {
	var err error
	if m.Links, err = t.loadLinks(); err != nil {
		return nil, nil, err
	}
	names := make(map[int]string, len(m.Links))
	devs := make([]string, 0, len(m.Links))
	for _, l := range m.Links {
		names[l.Index] = l.Name
		devs = append(devs, l.Name)
	}
	name := func(index int) (string, error) {
		if n, ok := names[index]; ok {
			return n, nil
		}
		return "", fmt.Errorf("device index %d: %w", index, errChanged)
	}
	for _, f := range []fib.Family{fib.V4, fib.V6} {
		addrs, err := t.loadAddrs(f, name)
		if err != nil {
			return nil, nil, err
		}
		m.Addrs = append(m.Addrs, addrs...)
	}
	for _, f := range []fib.Family{fib.V4, fib.V6} {
		rules, err := t.loadRules(f)
		if err != nil {
			return nil, nil, err
		}
		m.Rules = append(m.Rules, rules...)
	}
	return name, devs, nil
}

// loadLinks dumps the devices. It decodes the few attributes the model
// keeps from the raw messages, and asks the kernel to leave the
// statistics out of them: vishvananda/netlink's LinkList decodes every
// attribute of every device, which costs more than the rest of LoadFor.
func (t *target) loadLinks() ([]fib.Link, error) {
	msgs, err := retry(func() ([][]byte, error) {
		req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_DUMP)
		req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
		req.AddData(u32Attr(unix.IFLA_EXT_MASK, rtextFilterSkipStats))
		return t.request(req, unix.RTM_NEWLINK)
	})
	if err != nil {
		return nil, fmt.Errorf("dump links: %w", err)
	}
	out := make([]fib.Link, 0, len(msgs))
	for _, m := range msgs {
		l, err := parseLink(m)
		if err != nil {
			return nil, fmt.Errorf("dump links: %w", err)
		}
		out = append(out, l)
	}
	return out, nil
}

// nlaTypeMask strips the flags NLA_F_NESTED and NLA_F_NET_BYTEORDER from
// an attribute's type (NLA_TYPE_MASK).
const nlaTypeMask = ^uint16(unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)

// rtextFilterSkipStats is RTEXT_FILTER_SKIP_STATS (not in
// golang.org/x/sys/unix): no IFLA_STATS, IFLA_STATS64 in link messages.
const rtextFilterSkipStats = 1 << 3

// parseLink decodes an RTM_NEWLINK message: index, name, flags, master,
// group, and the kind (bridge, veth, vrf with its table; loopback by
// IFF_LOOPBACK).
func parseLink(m []byte) (fib.Link, error) {
	if len(m) < unix.SizeofIfInfomsg {
		return fib.Link{}, fmt.Errorf("link message of %d bytes, shorter than its header", len(m))
	}
	hdr := nl.DeserializeIfInfomsg(m)
	l := fib.Link{
		Index:   int(hdr.Index),
		Kind:    fib.KindOther,
		Up:      hdr.Flags&unix.IFF_UP != 0,
		Carrier: hdr.Flags&unix.IFF_LOWER_UP != 0,
	}
	attrs, err := nl.ParseRouteAttr(m[unix.SizeofIfInfomsg:])
	if err != nil {
		return l, fmt.Errorf("link %d: attributes: %w", l.Index, err)
	}
	for _, a := range attrs {
		switch a.Attr.Type & nlaTypeMask {
		case unix.IFLA_IFNAME:
			l.Name = attrString(a)
		case unix.IFLA_MASTER:
			var master uint32
			master, err = attrU32(a)
			l.Master = int(master)
		case unix.IFLA_GROUP:
			l.Group, err = attrU32(a)
		case unix.IFLA_LINKINFO:
			err = parseLinkInfo(a.Value, &l)
		}
		if err != nil {
			return l, fmt.Errorf("link %d: %w", l.Index, err)
		}
	}
	if hdr.Flags&unix.IFF_LOOPBACK != 0 {
		l.Kind = fib.KindLoopback
	}
	return l, nil
}

// parseLinkInfo decodes IFLA_LINKINFO: the kind, and a VRF's table.
func parseLinkInfo(b []byte, l *fib.Link) error {
	info, err := nl.ParseRouteAttr(b)
	if err != nil {
		return fmt.Errorf("IFLA_LINKINFO: %w", err)
	}
	var kind string
	var data []byte
	for _, a := range info {
		switch a.Attr.Type & nlaTypeMask {
		case unix.IFLA_INFO_KIND:
			kind = attrString(a)
		case unix.IFLA_INFO_DATA:
			data = a.Value
		}
	}
	l.Kind = fib.KindOf(kind)
	if l.Kind != fib.KindVRF {
		return nil
	}
	vrf, err := nl.ParseRouteAttr(data)
	if err != nil {
		return fmt.Errorf("IFLA_INFO_DATA: %w", err)
	}
	for _, a := range vrf {
		if a.Attr.Type&nlaTypeMask == unix.IFLA_VRF_TABLE {
			table, err := attrU32(a)
			if err != nil {
				return fmt.Errorf("IFLA_VRF_TABLE: %w", err)
			}
			l.VRFTable = fib.TableID(table)
		}
	}
	return nil
}

// loadAddrs dumps the addresses of one family.
//
// An address with a peer (10.0.0.1 peer 10.0.0.2/32) has Prefix set to the
// local address as a host prefix and Peer to the peer with the prefix
// length, which is the prefix its route covers. Secondary is IPv4's
// IFA_F_SECONDARY; the same bit means "temporary" for IPv6 and is not
// copied.
func (t *target) loadAddrs(family fib.Family, name linkNamer) ([]fib.Address, error) {
	addrs, err := retry(func() ([]netlink.Addr, error) { return t.h.AddrList(nil, int(family)) })
	if err != nil {
		return nil, fmt.Errorf("dump %s addresses: %w", family, err)
	}
	out := make([]fib.Address, 0, len(addrs))
	for _, a := range addrs {
		fa := fib.Address{
			Scope:         fib.Scope(a.Scope),
			Secondary:     family == fib.V4 && a.Flags&unix.IFA_F_SECONDARY != 0,
			NoPrefixRoute: a.Flags&unix.IFA_F_NOPREFIXROUTE != 0,
			Tentative:     a.Flags&unix.IFA_F_TENTATIVE != 0,
			Deprecated:    a.Flags&unix.IFA_F_DEPRECATED != 0,
		}
		if fa.Link, err = name(a.LinkIndex); err != nil {
			return nil, fmt.Errorf("%s address: %w", family, err)
		}
		if a.IPNet == nil {
			return nil, fmt.Errorf("%s address on %s: no address", family, fa.Link)
		}
		if fa.Prefix, err = prefixOf(a.IP, a.Mask); err != nil {
			return nil, fmt.Errorf("%s address on %s: %w", family, fa.Link, err)
		}
		if a.Peer != nil {
			if fa.Peer, err = prefixOf(a.Peer.IP, a.Peer.Mask); err != nil {
				return nil, fmt.Errorf("%s address on %s: peer: %w", family, fa.Link, err)
			}
		}
		out = append(out, fa)
	}
	return out, nil
}

// prefixOf converts an address and mask from vishvananda/netlink, keeping
// the host bits.
func prefixOf(ip net.IP, mask net.IPMask) (netip.Prefix, error) {
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Prefix{}, fmt.Errorf("address of %d bytes", len(ip))
	}
	ones, bits := mask.Size()
	if bits != addr.BitLen() {
		return netip.Prefix{}, fmt.Errorf("mask of %d bits for %s", bits, addr)
	}
	return netip.PrefixFrom(addr, ones), nil
}
