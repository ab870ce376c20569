package fib

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// addrScope6 is the scope of an IPv6 address as source selection ranks it
// (__ipv6_addr_src_scope): 2 link (the kernel ranks ::1 as link-local too),
// 5 site, 14 global; multicast addresses carry their own scope. Like
// netip.Prefix.Contains, no prefix holds an address with a zone.
func addrScope6(a netip.Addr) int {
	switch {
	case a.IsUnspecified():
		return -1
	case a == netip.IPv6Loopback():
		return 2
	case !a.Is6() || a.Zone() != "":
		return 14
	}
	b := a.As16()
	switch {
	case b[0] == 0xff: // ff00::/8
		return int(b[1] & 0x0f)
	case b[0] == 0xfe && b[1]&0xc0 == 0x80: // fe80::/10
		return 2
	case b[0] == 0xfe && b[1]&0xc0 == 0xc0: // fec0::/10
		return 5
	}
	return 14
}

// label6 is the address's label in the kernel's default label table
// (ip6addrlbl, RFC 6724): ::1/128 0, ::/0 1, 2002::/16 2, ::/96 3,
// ::ffff:0:0/96 4, fc00::/7 5, 2001::/32 6, 2001:10::/28 7, fec0::/10 11,
// 3ffe::/16 12 — the longest matching prefix wins.
func label6(a netip.Addr) int {
	b := a.As16()
	zero12 := true
	for _, x := range b[:10] {
		if x != 0 {
			zero12 = false
			break
		}
	}
	switch {
	case a == netip.IPv6Loopback():
		return 0
	case zero12 && b[10] == 0xff && b[11] == 0xff:
		return 4
	case zero12 && b[10] == 0 && b[11] == 0:
		return 3
	case b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0:
		return 6
	case b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3]&0xf0 == 0x10:
		return 7
	case b[0] == 0x20 && b[1] == 0x02:
		return 2
	case b[0] == 0x3f && b[1] == 0xfe:
		return 12
	case b[0] == 0xfe && b[1]&0xc0 == 0xc0:
		return 11
	case b[0]&0xfe == 0xfc:
		return 5
	}
	return 1
}

// srcAddr6 is an IPv6 address of a device as source selection ranks it:
// the address as two numbers, its scope, label and prefix length.
// Addresses that are never picked (tentative, multicast, unspecified) are
// left out.
type srcAddr6 struct {
	addr       *Address
	hi, lo     uint64
	scope      int
	label      int
	bits       int
	deprecated bool
}

func newSrcAddr6(a *Address, label, scope int) (srcAddr6, bool) {
	addr := a.Prefix.Addr()
	if a.Tentative || multicast6.Contains(addr) || addr.IsUnspecified() {
		return srcAddr6{}, false
	}
	b := addr.As16()
	return srcAddr6{addr: a, hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:]),
		scope: scope, label: label, bits: a.Prefix.Bits(), deprecated: a.Deprecated}, true
}

// selectAddr6 is ipv6_dev_get_saddr: RFC 6724 source selection over the
// addresses of dev alone (for multicast and link-local destinations) or of
// every device, skipping tentative addresses. Rules applied in order: same
// address, appropriate scope, not deprecated, on the outgoing device, same
// label, longest matching prefix (capped at the address's prefix length).
// The first address with the best score wins.
func (m *Model) selectAddr6(ix *index, dev *device, dst netip.Addr) netip.Addr {
	dstScope := addrScope6(dst)
	b := dst.As16()
	// multicast6.Contains(dst), without the prefix arithmetic
	multicast := dst.Is6() && dst.Zone() == "" && b[0] == 0xff
	onlyDev := dev != nil && (multicast || dstScope <= 2)
	dstLabel := label6(dst)
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	var best *Address
	bestScore := -1
	consider := func(d *device) {
		for i := range d.src6 {
			a := &d.src6[i]
			if score := a.score(dst, hi, lo, dstScope, dstLabel, dev == nil || d == dev); score > bestScore {
				best, bestScore = a.addr, score
			}
		}
	}
	if onlyDev {
		consider(dev)
	} else {
		for _, d := range ix.byIndex {
			consider(d)
		}
	}
	if best == nil {
		return netip.Addr{}
	}
	return best.Prefix.Addr()
}

// score packs the source selection rules into one number whose order is
// theirs, most significant first: same address (bit 20), scope (bits
// 11–19), not deprecated (10), on the outgoing device (9), same label (8),
// common prefix length (0–7).
func (a *srcAddr6) score(dst netip.Addr, hi, lo uint64, dstScope, dstLabel int, onDev bool) int {
	var scopeRank int
	if a.scope >= dstScope {
		scopeRank = -a.scope
	} else {
		scopeRank = a.scope - 128
	}
	prefix := bits.LeadingZeros64(a.hi ^ hi)
	if prefix == 64 {
		prefix += bits.LeadingZeros64(a.lo ^ lo)
	}
	prefix = min(prefix, a.bits)
	return b2i(a.hi == hi && a.lo == lo && a.addr.Prefix.Addr() == dst)<<20 | (scopeRank+256)<<11 | b2i(!a.deprecated || a.scope <= 2)<<10 |
		b2i(onDev)<<9 | b2i(a.label == dstLabel)<<8 | prefix
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
