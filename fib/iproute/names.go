package iproute

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/fibguard/fibguard/fib"
)

// This file reads the values iproute2 prints by name or in its own number
// formats. The name tables are iproute2's defaults (/etc/iproute2/rt_dsfield,
// rt_protos, group) and Debian's /etc/protocols, which iproute2 consults
// through getprotobynumber; a host with its own names must be dumped with
// `ip -N`.

// dsfieldNames is iproute2's default rt_dsfield.
var dsfieldNames = map[string]uint8{
	"default": 0x00,
	"AF11":    0x28, "AF12": 0x30, "AF13": 0x38,
	"AF21": 0x48, "AF22": 0x50, "AF23": 0x58,
	"AF31": 0x68, "AF32": 0x70, "AF33": 0x78,
	"AF41": 0x88, "AF42": 0x90, "AF43": 0x98,
	"CS1": 0x20, "CS2": 0x40, "CS3": 0x60, "CS4": 0x80,
	"CS5": 0xa0, "CS6": 0xc0, "CS7": 0xe0,
	"EF": 0xb8,
}

// ipProtoNames maps the protocol names of /etc/protocols (Debian netbase,
// plus the IANA keyword "ipv4" other distributions use for 4) to numbers.
var ipProtoNames = map[string]uint8{
	"ip": 0, "hopopt": 0, "icmp": 1, "igmp": 2, "ggp": 3, "ipencap": 4,
	"ipv4": 4, "st": 5, "tcp": 6, "egp": 8, "igp": 9, "pup": 12, "udp": 17,
	"hmp": 20, "xns-idp": 22, "rdp": 27, "iso-tp4": 29, "dccp": 33,
	"xtp": 36, "ddp": 37, "idpr-cmtp": 38, "ipv6": 41, "ipv6-route": 43,
	"ipv6-frag": 44, "idrp": 45, "rsvp": 46, "gre": 47, "esp": 50, "ah": 51,
	"skip": 57, "ipv6-icmp": 58, "ipv6-nonxt": 59, "ipv6-opts": 60,
	"rspf": 73, "vmtp": 81, "eigrp": 88, "ospf": 89, "ax.25": 93,
	"ipip": 94, "etherip": 97, "encap": 98, "pim": 103, "ipcomp": 108,
	"vrrp": 112, "l2tp": 115, "isis": 124, "sctp": 132, "fc": 133,
	"mobility-header": 135, "udplite": 136, "mpls-in-ip": 137, "manet": 138,
	"hip": 139, "shim6": 140, "wesp": 141, "rohc": 142, "ethernet": 143,
}

// routeProtoNames is iproute2's default rt_protos, used to name the route
// protocols `ip -N` prints as numbers.
var routeProtoNames = map[uint8]string{
	0: "unspec", 1: "redirect", 2: "kernel", 3: "boot", 4: "static",
	8: "gated", 9: "ra", 10: "mrt", 11: "zebra", 12: "bird", 13: "dnrouted",
	14: "xorp", 15: "ntk", 16: "dhcp", 18: "keepalived", 42: "babel",
	99: "openr", 186: "bgp", 187: "isis", 188: "ospf", 189: "rip",
	192: "eigrp",
}

var errZone = errors.New("address has a zone")

// parseAddr reads an address of the family, without zone.
func parseAddr(s string, f fib.Family) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, err
	}
	if a.Zone() != "" {
		return netip.Addr{}, errZone
	}
	if fib.FamilyOf(a) != f {
		return netip.Addr{}, fmt.Errorf("%s is not %s", a, f)
	}
	return a, nil
}

// parseRoutePrefix reads a route destination or source as iproute2 prints
// it: "default", a prefix, or a bare address meaning a host route. The
// result is masked.
func parseRoutePrefix(s string, f fib.Family) (netip.Prefix, error) {
	if s == "default" {
		return netip.PrefixFrom(zeroAddr(f), 0), nil
	}
	addr, _, hasLen := strings.Cut(s, "/")
	a, err := parseAddr(addr, f)
	if err != nil {
		return netip.Prefix{}, err
	}
	if !hasLen {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return p.Masked(), nil
}

func zeroAddr(f fib.Family) netip.Addr {
	if f == fib.V4 {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}

// checkFamily accepts the families the model has.
func checkFamily(f fib.Family) error {
	if f != fib.V4 && f != fib.V6 {
		return fmt.Errorf("iproute: unsupported family %s", f)
	}
	return nil
}

// parseHex reads a number iproute2 prints with "%#x": "0" or "0x1f".
func parseHex(s string, bits int) (uint64, error) {
	if s == "0" {
		return 0, nil
	}
	digits, ok := strings.CutPrefix(s, "0x")
	if !ok || digits == "" {
		return 0, fmt.Errorf("%q is not a 0x-prefixed hex number", s)
	}
	return strconv.ParseUint(digits, 16, bits)
}

// parseDSField reads a TOS / DS field as rtnl_dsfield_n2a prints it: a name
// from rt_dsfield or "0x%02x".
func parseDSField(s string) (uint8, error) {
	if v, ok := dsfieldNames[s]; ok {
		return v, nil
	}
	v, err := parseHex(s, 8)
	if err != nil {
		return 0, fmt.Errorf("unknown DS field %q", s)
	}
	return uint8(v), nil
}

// parseIPProto reads an IP protocol as inet_proto_n2a prints it: a name
// from /etc/protocols, "ipproto-N", or a number.
func parseIPProto(s string) (uint8, error) {
	if v, ok := ipProtoNames[s]; ok {
		return v, nil
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(s, "ipproto-"), 10, 8)
	if err != nil {
		return 0, fmt.Errorf("unknown IP protocol %q (dump with ip -N)", s)
	}
	return uint8(n), nil
}

// parseGroup reads a device group: "default" or a number.
func parseGroup(s string) (uint32, error) {
	if s == "default" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("unknown device group %q (dump with ip -N)", s)
	}
	return uint32(n), nil
}

// parseTable reads a table name or number; unspec is not a table.
func parseTable(s string) (fib.TableID, error) {
	t, err := fib.ParseTableID(s)
	if err != nil {
		return 0, fmt.Errorf("%w (dump with ip -N)", err)
	}
	if t == fib.TableUnspec {
		return 0, errors.New("table unspec")
	}
	return t, nil
}

// parseRouteType reads a route type by name or, from `ip -N`, number.
func parseRouteType(s string) (fib.RouteType, error) {
	t, err := fib.ParseRouteType(s)
	if err != nil {
		n, nerr := strconv.ParseUint(s, 10, 8)
		if nerr != nil {
			return 0, err
		}
		t = fib.RouteType(n)
	}
	if t == fib.TypeUnspec || t > fib.TypeThrow {
		return 0, fmt.Errorf("unsupported route type %q", s)
	}
	return t, nil
}

// routeProtocol names a route protocol the way iproute2 does without -N.
func routeProtocol(s string) string {
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return s
	}
	if name, ok := routeProtoNames[uint8(n)]; ok {
		return name
	}
	return s
}
