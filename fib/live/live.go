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
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net/netip"

	"github.com/fibguard/fibguard/fib"
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
	// The sysctls of "all" and fib_trie are read while the thread is in
	// the namespace to create the socket: one entry, not two.
	var st procState
	t, err := open(netns, func(t *target) error {
		var err error
		st, err = t.readProc(true)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer t.close()
	for attempt := 1; ; attempt++ {
		m, err := t.load(st)
		if errors.Is(err, errChanged) && attempt < loadAttempts {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", t, err)
		}
		return m, nil
	}
}

func (t *target) load(st procState) (*fib.Model, error) {
	m := &fib.State{}
	name, err := t.loadBase(m)
	if err != nil {
		return nil, err
	}
	msgs, err := t.dump(unix.RTM_GETROUTE, unix.AF_UNSPEC, unix.RTM_NEWROUTE)
	if err != nil {
		return nil, fmt.Errorf("dump routes: %w", err)
	}
	for _, f := range []fib.Family{fib.V4, fib.V6} {
		routes, err := parseRoutes(msgs, f, fib.TableUnspec, name)
		if err != nil {
			return nil, err
		}
		m.Routes = append(m.Routes, routes...)
	}
	maps.Copy(m.Conf, st.conf)
	m.Unmerged = unmerged(st.trie, m.Rules)
	return fib.FromState(*m), nil
}

// loadBase reads what Load and LoadFor both take whole into m: the links
// with their IPv4 sysctls (into m.Conf), the addresses and the rules of
// both families, one dump each. It returns the namer of the links it
// read, which fails with errChanged for an index it did not see.
func (t *target) loadBase(m *fib.State) (linkNamer, error) {
	var err error
	if m.Links, m.Conf, err = t.loadLinks(); err != nil {
		return nil, err
	}
	names := make(map[int]string, len(m.Links))
	for _, l := range m.Links {
		names[l.Index] = l.Name
	}
	t.names = names
	name := func(index int) (string, error) {
		if n, ok := names[index]; ok {
			return n, nil
		}
		return "", fmt.Errorf("device index %d: %w", index, errChanged)
	}
	if m.Addrs, err = t.loadAddrs(name); err != nil {
		return nil, err
	}
	if m.Rules, err = t.loadRules(); err != nil {
		return nil, err
	}
	return name, nil
}

// loadLinks dumps the devices and their IPv4 sysctls. It decodes the few
// attributes the model keeps from the raw messages, and asks the kernel
// to leave the statistics out of them: vishvananda/netlink's LinkList
// decodes every attribute of every device, which costs more than the rest
// of LoadFor. The sysctls come with each device (IFLA_AF_SPEC), the same
// values /proc/sys/net/ipv4/conf/DEV holds, without opening four files
// per device.
func (t *target) loadLinks() ([]fib.Link, map[string]fib.DevConf, error) {
	msgs, err := retry(func() ([][]byte, error) {
		req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_DUMP)
		req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
		req.AddData(u32Attr(unix.IFLA_EXT_MASK, rtextFilterSkipStats))
		return t.request(req, unix.RTM_NEWLINK)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("dump links: %w", err)
	}
	out := make([]fib.Link, 0, len(msgs))
	conf := make(map[string]fib.DevConf, len(msgs)+1)
	for _, m := range msgs {
		l, c, err := parseLink(m)
		if err != nil {
			return nil, nil, fmt.Errorf("dump links: %w", err)
		}
		out = append(out, l)
		if c != nil {
			conf[l.Name] = *c
		}
	}
	return out, conf, nil
}

// nlaTypeMask strips the flags NLA_F_NESTED and NLA_F_NET_BYTEORDER from
// an attribute's type (NLA_TYPE_MASK).
const nlaTypeMask = ^uint16(unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)

// rtextFilterSkipStats is RTEXT_FILTER_SKIP_STATS (not in
// golang.org/x/sys/unix): no IFLA_STATS, IFLA_STATS64 in link messages.
const rtextFilterSkipStats = 1 << 3

// parseLink decodes an RTM_NEWLINK message: index, name, flags, master,
// group, and the kind (bridge, veth, vrf with its table; loopback by
// IFF_LOOPBACK); and the device's IPv4 sysctls, nil for a device without
// IPv4 configuration (an MTU below 68 removes it).
func parseLink(m []byte) (fib.Link, *fib.DevConf, error) {
	if len(m) < unix.SizeofIfInfomsg {
		return fib.Link{}, nil, fmt.Errorf("link message of %d bytes, shorter than its header", len(m))
	}
	hdr := nl.DeserializeIfInfomsg(m)
	l := fib.Link{
		Index:   int(hdr.Index),
		Kind:    fib.KindOther,
		Up:      hdr.Flags&unix.IFF_UP != 0,
		Carrier: hdr.Flags&unix.IFF_LOWER_UP != 0,
	}
	attrs, err := parseAttrs(m[unix.SizeofIfInfomsg:])
	if err != nil {
		return l, nil, fmt.Errorf("link %d: attributes: %w", l.Index, err)
	}
	var conf *fib.DevConf
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
		case unix.IFLA_AF_SPEC:
			conf, err = parseAFSpecInet(a.Value)
		}
		if err != nil {
			return l, nil, fmt.Errorf("link %d: %w", l.Index, err)
		}
	}
	if hdr.Flags&unix.IFF_LOOPBACK != 0 {
		l.Kind = fib.KindLoopback
	}
	return l, conf, nil
}

// Indexes of struct ipv4_devconf's values (IPV4_DEVCONF_*, linux/ip.h; not
// in golang.org/x/sys/unix), as IFLA_INET_CONF carries them: value i is
// at offset 4*(i-1).
const (
	devconfForwarding               = 1
	devconfRPFilter                 = 8
	devconfRouteLocalnet            = 26
	devconfIgnoreRoutesWithLinkdown = 29
)

// parseAFSpecInet finds, in a device's IFLA_AF_SPEC, the IPv4 sysctls
// (AF_INET's IFLA_INET_CONF), or nil when the device has none.
func parseAFSpecInet(b []byte) (*fib.DevConf, error) {
	specs, err := parseAttrs(b)
	if err != nil {
		return nil, fmt.Errorf("IFLA_AF_SPEC: %w", err)
	}
	for _, spec := range specs {
		if spec.Attr.Type&nlaTypeMask != unix.AF_INET {
			continue
		}
		inet, err := parseAttrs(spec.Value)
		if err != nil {
			return nil, fmt.Errorf("IFLA_AF_SPEC AF_INET: %w", err)
		}
		for _, a := range inet {
			if a.Attr.Type&nlaTypeMask == unix.IFLA_INET_CONF {
				return parseDevconf(a.Value)
			}
		}
	}
	return nil, nil
}

// parseDevconf decodes IFLA_INET_CONF, an array of native-endian u32.
func parseDevconf(b []byte) (*fib.DevConf, error) {
	if len(b) < 4*devconfIgnoreRoutesWithLinkdown {
		return nil, fmt.Errorf("IFLA_INET_CONF: %d bytes, want at least %d", len(b), 4*devconfIgnoreRoutesWithLinkdown)
	}
	v := func(i int) uint32 { return binary.NativeEndian.Uint32(b[4*(i-1):]) }
	return &fib.DevConf{
		RouteLocalnet:            v(devconfRouteLocalnet) != 0,
		Forwarding:               v(devconfForwarding) != 0,
		RPFilter:                 int(int32(v(devconfRPFilter))),
		IgnoreRoutesWithLinkdown: v(devconfIgnoreRoutesWithLinkdown) != 0,
	}, nil
}

// parseLinkInfo decodes IFLA_LINKINFO: the kind, and a VRF's table.
func parseLinkInfo(b []byte, l *fib.Link) error {
	info, err := parseAttrs(b)
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
	vrf, err := parseAttrs(data)
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

// loadAddrs dumps the addresses of both families, IPv4 first, each in the
// kernel's order.
//
// An address with a peer (10.0.0.1 peer 10.0.0.2/32) has Prefix set to the
// local address as a host prefix and Peer to the peer with the prefix
// length, which is the prefix its route covers. Secondary is IPv4's
// IFA_F_SECONDARY; the same bit means "temporary" for IPv6 and is not
// copied.
func (t *target) loadAddrs(name linkNamer) ([]fib.Address, error) {
	msgs, err := t.dump(unix.RTM_GETADDR, unix.AF_UNSPEC, unix.RTM_NEWADDR)
	if err != nil {
		return nil, fmt.Errorf("dump addresses: %w", err)
	}
	out := make([]fib.Address, 0, len(msgs))
	for _, family := range []fib.Family{fib.V4, fib.V6} {
		for _, msg := range msgs {
			a, err := parseAddr(msg)
			if err != nil {
				return nil, fmt.Errorf("%s address: %w", family, err)
			}
			if a.family != family {
				continue
			}
			fa := fib.Address{
				Scope:         fib.Scope(a.scope),
				Secondary:     family == fib.V4 && a.flags&unix.IFA_F_SECONDARY != 0,
				NoPrefixRoute: a.flags&unix.IFA_F_NOPREFIXROUTE != 0,
				Tentative:     a.flags&unix.IFA_F_TENTATIVE != 0,
				Deprecated:    a.flags&unix.IFA_F_DEPRECATED != 0,
				Prefix:        a.prefix,
				Peer:          a.peer,
			}
			if fa.Link, err = name(a.index); err != nil {
				return nil, fmt.Errorf("%s address: %w", family, err)
			}
			if !a.prefix.IsValid() {
				return nil, fmt.Errorf("%s address on %s: no address", family, fa.Link)
			}
			out = append(out, fa)
		}
	}
	return out, nil
}

// rawAddr is an RTM_NEWADDR message decoded.
type rawAddr struct {
	family       fib.Family
	index        int
	scope        uint8
	flags        uint32
	prefix, peer netip.Prefix
}

// parseAddr decodes an RTM_NEWADDR message. IFA_LOCAL is the address of
// the device and IFA_ADDRESS, if it differs, its peer; IPv6 sends only
// IFA_ADDRESS unless the address has a peer. IFA_FLAGS, when present,
// carries the flags in full (ifa_flags holds only the low 8 bits).
// Messages of other families are returned with their family only.
func parseAddr(m []byte) (rawAddr, error) {
	if len(m) < unix.SizeofIfAddrmsg {
		return rawAddr{}, fmt.Errorf("address message of %d bytes, shorter than its header", len(m))
	}
	hdr := nl.DeserializeIfAddrmsg(m)
	a := rawAddr{family: fib.Family(hdr.Family), index: int(hdr.Index), scope: hdr.Scope, flags: uint32(hdr.Flags)}
	if a.family != fib.V4 && a.family != fib.V6 {
		return a, nil
	}
	attrs, err := parseAttrs(m[unix.SizeofIfAddrmsg:])
	if err != nil {
		return a, fmt.Errorf("attributes: %w", err)
	}
	var local, address netip.Addr
	for _, at := range attrs {
		switch at.Attr.Type {
		case unix.IFA_ADDRESS:
			address, err = attrAddr(at)
		case unix.IFA_LOCAL:
			local, err = attrAddr(at)
		case unix.IFA_FLAGS:
			a.flags, err = attrU32(at)
		}
		if err != nil {
			return a, err
		}
	}
	withLen := func(ip netip.Addr, bits int) (netip.Prefix, error) {
		p := netip.PrefixFrom(ip, bits)
		if !p.IsValid() {
			return p, fmt.Errorf("prefix length %d for %s", bits, ip)
		}
		return p, nil
	}
	switch {
	case local.IsValid() && (a.family != fib.V4 || !address.IsValid() || local != address):
		if a.prefix, err = withLen(local, local.BitLen()); err != nil {
			return a, err
		}
		if address.IsValid() {
			a.peer, err = withLen(address, int(hdr.Prefixlen))
		}
	case local.IsValid():
		a.prefix, err = withLen(local, int(hdr.Prefixlen))
	case address.IsValid():
		a.prefix, err = withLen(address, int(hdr.Prefixlen))
	}
	return a, err
}
