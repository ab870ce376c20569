package live

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/fibguard/fibguard/fib"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// protocolNames are iproute2's names for route protocols
// (/etc/iproute2/rt_protos).
var protocolNames = map[uint8]string{
	unix.RTPROT_UNSPEC:     "unspec",
	unix.RTPROT_REDIRECT:   "redirect",
	unix.RTPROT_KERNEL:     "kernel",
	unix.RTPROT_BOOT:       "boot",
	unix.RTPROT_STATIC:     "static",
	unix.RTPROT_GATED:      "gated",
	unix.RTPROT_RA:         "ra",
	unix.RTPROT_MRT:        "mrt",
	unix.RTPROT_ZEBRA:      "zebra",
	unix.RTPROT_BIRD:       "bird",
	unix.RTPROT_DNROUTED:   "dnrouted",
	unix.RTPROT_XORP:       "xorp",
	unix.RTPROT_NTK:        "ntk",
	unix.RTPROT_DHCP:       "dhcp",
	unix.RTPROT_KEEPALIVED: "keepalived",
	unix.RTPROT_BABEL:      "babel",
	unix.RTPROT_OPENR:      "openr",
	unix.RTPROT_BGP:        "bgp",
	unix.RTPROT_ISIS:       "isis",
	unix.RTPROT_OSPF:       "ospf",
	unix.RTPROT_RIP:        "rip",
	unix.RTPROT_EIGRP:      "eigrp",
}

// protocolName returns iproute2's name for a route protocol, or its
// number.
func protocolName(p uint8) string {
	if n, ok := protocolNames[p]; ok {
		return n
	}
	return strconv.Itoa(int(p))
}

// rtaNHID is RTA_NH_ID, the id of the nexthop object a route uses (not in
// golang.org/x/sys/unix).
const rtaNHID = 30

// linkNamer maps an interface index to its name.
type linkNamer func(index int) (string, error)

// loadTable reads the routes of one table of one family, in the kernel's
// order. The kernel filters the dump by RTA_TABLE if it checks dump
// requests strictly (NETLINK_GET_STRICT_CHK, Linux 4.20 and later);
// otherwise every table is dumped and the others are dropped here. A table
// that does not exist is empty.
//
// Strict checking is switched on for this one request and off again, so
// that route lookups on the same socket are parsed as RouteGet's are.
func (t *target) loadTable(family fib.Family, table fib.TableID, name linkNamer) ([]fib.Route, error) {
	msgs, err := retry(func() ([][]byte, error) {
		if !t.setStrict(true) {
			return t.dump(unix.RTM_GETROUTE, int(family), unix.RTM_NEWROUTE)
		}
		defer t.setStrict(false)
		req := nl.NewNetlinkRequest(unix.RTM_GETROUTE, unix.NLM_F_DUMP)
		req.AddData(&nl.RtMsg{RtMsg: unix.RtMsg{Family: uint8(family)}})
		req.AddData(u32Attr(unix.RTA_TABLE, uint32(table)))
		return t.request(req, unix.RTM_NEWROUTE)
	})
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dump %s routes of table %s: %w", family, table, err)
	}
	return parseRoutes(msgs, family, table, name)
}

// parseRoutes decodes the messages of a route dump, keeping the routes of
// the family and, unless it is TableUnspec, of the table; routes of the
// IPv6 cache (RTM_F_CLONED) are left out.
func parseRoutes(msgs [][]byte, family fib.Family, table fib.TableID, name linkNamer) ([]fib.Route, error) {
	routes := make([]fib.Route, 0, len(msgs))
	for _, m := range msgs {
		if len(m) < unix.SizeofRtMsg {
			return nil, fmt.Errorf("%s route: message of %d bytes, shorter than its header", family, len(m))
		}
		// struct rtmsg: rtm_family first, rtm_flags at byte 8.
		if fib.Family(m[0]) != family || binary.NativeEndian.Uint32(m[8:12])&unix.RTM_F_CLONED != 0 {
			continue
		}
		r, err := parseRoute(m, name)
		if err != nil {
			return nil, fmt.Errorf("%s route: %w", family, err)
		}
		if table != fib.TableUnspec && r.Table != table {
			continue
		}
		routes = append(routes, r)
	}
	return routes, nil
}

// parseRoute decodes an RTM_NEWROUTE message, from a dump or from a route
// lookup.
//
// A route whose next hops live in a nexthop object (RTA_NH_ID) is only
// decoded if the kernel also spells the next hops out, as it does while
// net.ipv4.nexthop_compat_mode is 1 (the default); the route keeps the
// object's id (Route.NHID), which decides how the kernel picks among a
// group's next hops.
func parseRoute(m []byte, name linkNamer) (fib.Route, error) {
	hdr, attrs, err := parseMsg(m)
	if err != nil {
		return fib.Route{}, err
	}
	r := fib.Route{
		Family:   fib.Family(hdr.Family),
		Table:    fib.TableID(hdr.Table),
		Type:     fib.RouteType(hdr.Type),
		TOS:      hdr.Tos,
		Scope:    fib.Scope(hdr.Scope),
		Protocol: protocolName(hdr.Protocol),
	}
	if r.Family != fib.V4 && r.Family != fib.V6 {
		return r, nil
	}
	var (
		nh       fib.NextHop
		oif      uint32
		nhID     bool
		hops     []fib.NextHop
		hasMulti bool
	)
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.RTA_DST:
			r.Dst, err = attrPrefix(a, hdr.Dst_len)
		case unix.RTA_SRC:
			r.Src, err = attrPrefix(a, hdr.Src_len)
		case unix.RTA_OIF:
			oif, err = attrU32(a)
		case unix.RTA_GATEWAY:
			nh.Gateway, err = attrAddr(a)
		case unix.RTA_VIA:
			nh.Gateway, err = attrVia(a)
		case unix.RTA_PRIORITY:
			r.Metric, err = attrU32(a)
		case unix.RTA_PREFSRC:
			r.PrefSrc, err = attrAddr(a)
		case unix.RTA_TABLE:
			var table uint32
			table, err = attrU32(a)
			r.Table = fib.TableID(table)
		case unix.RTA_MULTIPATH:
			hasMulti = true
			hops, err = parseMultipath(a.Value, name)
		case rtaNHID:
			nhID = true
			r.NHID, err = attrU32(a)
		}
		if err != nil {
			return r, err
		}
	}
	if !r.Dst.IsValid() {
		r.Dst = netip.PrefixFrom(unspecified(r.Family), 0)
	}
	r.Dst = r.Dst.Masked()
	switch {
	case hasMulti:
		r.NextHops = hops
	case oif != 0 || nh.Gateway.IsValid():
		if oif != 0 {
			if nh.Link, err = name(int(oif)); err != nil {
				return r, fmt.Errorf("route %s: %w", r.Dst, err)
			}
		}
		setNextHopFlags(&nh, hdr.Flags)
		r.NextHops = []fib.NextHop{nh}
	case nhID && r.Type != fib.TypeBlackhole:
		return r, fmt.Errorf("route %s table %s uses a nexthop object; set net.ipv4.nexthop_compat_mode=1 to have the kernel spell its next hops out", r.Dst, r.Table)
	}
	return r, nil
}

// parseMultipath decodes RTA_MULTIPATH: a sequence of struct rtnexthop,
// each followed by its own attributes.
func parseMultipath(b []byte, name linkNamer) ([]fib.NextHop, error) {
	var hops []fib.NextHop
	for len(b) > 0 {
		if len(b) < unix.SizeofRtNexthop {
			return nil, fmt.Errorf("RTA_MULTIPATH: %d trailing bytes", len(b))
		}
		size := int(binary.NativeEndian.Uint16(b[0:2]))
		if size < unix.SizeofRtNexthop || size > len(b) {
			return nil, fmt.Errorf("RTA_MULTIPATH: next hop of %d bytes in %d", size, len(b))
		}
		flags, weight, oif := b[2], b[3], binary.NativeEndian.Uint32(b[4:8])
		nh := fib.NextHop{Weight: int(weight) + 1}
		setNextHopFlags(&nh, uint32(flags))
		if oif != 0 {
			var err error
			if nh.Link, err = name(int(oif)); err != nil {
				return nil, fmt.Errorf("RTA_MULTIPATH: %w", err)
			}
		}
		attrs, err := parseAttrs(b[unix.SizeofRtNexthop:size])
		if err != nil {
			return nil, fmt.Errorf("RTA_MULTIPATH: %w", err)
		}
		for _, a := range attrs {
			switch a.Attr.Type {
			case unix.RTA_GATEWAY:
				nh.Gateway, err = attrAddr(a)
			case unix.RTA_VIA:
				nh.Gateway, err = attrVia(a)
			}
			if err != nil {
				return nil, fmt.Errorf("RTA_MULTIPATH: %w", err)
			}
		}
		hops = append(hops, nh)
		b = b[min(align4(size), len(b)):]
	}
	return hops, nil
}

// setNextHopFlags copies the RTNH_F_* flags the kernel keeps on a next hop
// (in rtm_flags for a single next hop, rtnh_flags for each of many).
func setNextHopFlags(nh *fib.NextHop, flags uint32) {
	nh.OnLink = flags&unix.RTNH_F_ONLINK != 0
	nh.LinkDown = flags&unix.RTNH_F_LINKDOWN != 0
	nh.Dead = flags&unix.RTNH_F_DEAD != 0
}

// unspecified returns 0.0.0.0 or ::, the destination of a default route.
func unspecified(f fib.Family) netip.Addr {
	if f == fib.V4 {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}

// align4 rounds a netlink length up to the 4-byte alignment of the next
// element.
func align4(n int) int {
	return (n + 3) &^ 3
}
