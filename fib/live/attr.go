package live

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/fibguard/fibguard/fib"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// parseMsg decodes the 12-byte header that starts route and rule messages
// (struct rtmsg, struct fib_rule_hdr share its layout) and the attributes
// after it, checking the length first so a short message is an error, not
// a panic.
func parseMsg(m []byte) (*nl.RtMsg, []syscall.NetlinkRouteAttr, error) {
	if len(m) < unix.SizeofRtMsg {
		return nil, nil, fmt.Errorf("message of %d bytes, shorter than its header", len(m))
	}
	hdr := *nl.DeserializeRtMsg(m)
	attrs, err := parseAttrs(m[unix.SizeofRtMsg:])
	if err != nil {
		return nil, nil, fmt.Errorf("attributes: %w", err)
	}
	return &hdr, attrs, nil
}

// parseAttrs splits netlink attributes (struct rtattr, each padded to 4
// bytes) as nl.ParseRouteAttr does, with one allocation: it counts them
// first. A link message holds some fifty attributes, and growing the
// slice one by one was a good part of a cold process's allocations.
// Trailing bytes too few for an attribute header are ignored; an
// attribute whose length overruns the buffer is an error.
func parseAttrs(b []byte) ([]syscall.NetlinkRouteAttr, error) {
	n := 0
	for rest := b; len(rest) >= unix.SizeofRtAttr; n++ {
		size := int(binary.NativeEndian.Uint16(rest[0:2]))
		if size < unix.SizeofRtAttr || size > len(rest) {
			return nil, fmt.Errorf("attribute of %d bytes in %d: %w", size, len(rest), syscall.EINVAL)
		}
		rest = rest[min(align4(size), len(rest)):]
	}
	attrs := make([]syscall.NetlinkRouteAttr, 0, n)
	for len(b) >= unix.SizeofRtAttr {
		size := int(binary.NativeEndian.Uint16(b[0:2]))
		attrs = append(attrs, syscall.NetlinkRouteAttr{
			Attr:  syscall.RtAttr{Len: uint16(size), Type: binary.NativeEndian.Uint16(b[2:4])},
			Value: b[unix.SizeofRtAttr:size],
		})
		b = b[min(align4(size), len(b)):]
	}
	return attrs, nil
}

func attrU8(a syscall.NetlinkRouteAttr) (uint8, error) {
	if len(a.Value) < 1 {
		return 0, fmt.Errorf("attribute %d: empty", a.Attr.Type)
	}
	return a.Value[0], nil
}

func attrU16(a syscall.NetlinkRouteAttr) (uint16, error) {
	if len(a.Value) < 2 {
		return 0, fmt.Errorf("attribute %d: %d bytes, want 2", a.Attr.Type, len(a.Value))
	}
	return binary.NativeEndian.Uint16(a.Value), nil
}

func attrU32(a syscall.NetlinkRouteAttr) (uint32, error) {
	if len(a.Value) < 4 {
		return 0, fmt.Errorf("attribute %d: %d bytes, want 4", a.Attr.Type, len(a.Value))
	}
	return binary.NativeEndian.Uint32(a.Value), nil
}

func attrU64(a syscall.NetlinkRouteAttr) (uint64, error) {
	if len(a.Value) < 8 {
		return 0, fmt.Errorf("attribute %d: %d bytes, want 8", a.Attr.Type, len(a.Value))
	}
	return binary.NativeEndian.Uint64(a.Value), nil
}

// attrU32Pair decodes two u32 in one attribute (a uid range).
func attrU32Pair(a syscall.NetlinkRouteAttr) (uint32, uint32, error) {
	if len(a.Value) < 8 {
		return 0, 0, fmt.Errorf("attribute %d: %d bytes, want 8", a.Attr.Type, len(a.Value))
	}
	return binary.NativeEndian.Uint32(a.Value), binary.NativeEndian.Uint32(a.Value[4:]), nil
}

// attrPortRange decodes struct fib_rule_port_range.
func attrPortRange(a syscall.NetlinkRouteAttr) (fib.PortRange, error) {
	if len(a.Value) < 4 {
		return fib.PortRange{}, fmt.Errorf("attribute %d: %d bytes, want 4", a.Attr.Type, len(a.Value))
	}
	return fib.PortRange{Start: binary.NativeEndian.Uint16(a.Value), End: binary.NativeEndian.Uint16(a.Value[2:])}, nil
}

// attrString decodes a NUL-terminated string attribute.
func attrString(a syscall.NetlinkRouteAttr) string {
	return unix.ByteSliceToString(a.Value)
}

// attrAddr decodes an address attribute of 4 or 16 bytes.
func attrAddr(a syscall.NetlinkRouteAttr) (netip.Addr, error) {
	addr, ok := netip.AddrFromSlice(a.Value)
	if !ok {
		return netip.Addr{}, fmt.Errorf("attribute %d: address of %d bytes", a.Attr.Type, len(a.Value))
	}
	return addr, nil
}

// attrPrefix decodes an address attribute with the prefix length carried
// in the message header.
func attrPrefix(a syscall.NetlinkRouteAttr, bits uint8) (netip.Prefix, error) {
	addr, err := attrAddr(a)
	if err != nil {
		return netip.Prefix{}, err
	}
	p := netip.PrefixFrom(addr, int(bits))
	if !p.IsValid() {
		return netip.Prefix{}, fmt.Errorf("attribute %d: prefix length %d for %s", a.Attr.Type, bits, addr)
	}
	return p, nil
}

// attrVia decodes RTA_VIA (struct rtvia: a family, then the address), the
// gateway of an IPv4 route through an IPv6 next hop.
func attrVia(a syscall.NetlinkRouteAttr) (netip.Addr, error) {
	if len(a.Value) < 2 {
		return netip.Addr{}, fmt.Errorf("RTA_VIA: %d bytes", len(a.Value))
	}
	addr, ok := netip.AddrFromSlice(a.Value[2:])
	if !ok {
		return netip.Addr{}, fmt.Errorf("RTA_VIA: address of %d bytes", len(a.Value)-2)
	}
	return addr, nil
}

// u32Attr encodes a native-endian u32 attribute for a request.
func u32Attr(typ int, v uint32) *nl.RtAttr {
	return nl.NewRtAttr(typ, binary.NativeEndian.AppendUint32(nil, v))
}

// be16Attr encodes a network-order u16 attribute (ports) for a request.
func be16Attr(typ int, v uint16) *nl.RtAttr {
	return nl.NewRtAttr(typ, binary.BigEndian.AppendUint16(nil, v))
}
