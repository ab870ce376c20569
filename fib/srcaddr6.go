package fib

import "net/netip"

// addrScope6 is the scope of an IPv6 address as source selection ranks it
// (__ipv6_addr_src_scope): 2 link (the kernel ranks ::1 as link-local too),
// 5 site, 14 global; multicast addresses carry their own scope.
func addrScope6(a netip.Addr) int {
	switch {
	case a.IsUnspecified():
		return -1
	case a == netip.IPv6Loopback():
		return 2
	case multicast6.Contains(a):
		return int(a.As16()[1] & 0x0f)
	case linkLocal6.Contains(a):
		return 2
	case siteLocal6.Contains(a):
		return 5
	}
	return 14
}

var siteLocal6 = netip.MustParsePrefix("fec0::/10")

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

// commonPrefixLen returns how many leading bits two IPv6 addresses share.
func commonPrefixLen(a, b netip.Addr) int {
	x, y := a.As16(), b.As16()
	n := 0
	for i := range x {
		d := x[i] ^ y[i]
		if d == 0 {
			n += 8
			continue
		}
		for d&0x80 == 0 {
			n++
			d <<= 1
		}
		break
	}
	return n
}

// selectAddr6 is ipv6_dev_get_saddr: RFC 6724 source selection over the
// addresses of dev alone (for multicast and link-local destinations) or of
// every device, skipping tentative addresses. Rules applied in order: same
// address, appropriate scope, not deprecated, on the outgoing device, same
// label, longest matching prefix (capped at the address's prefix length).
func (m *Model) selectAddr6(ix *index, dev *device, dst netip.Addr) netip.Addr {
	dstScope := addrScope6(dst)
	onlyDev := dev != nil && (multicast6.Contains(dst) || dstScope <= 2)
	dstLabel := label6(dst)
	var best *Address
	var bestScore [6]int
	consider := func(a *Address, label, sc int) {
		addr := a.Prefix.Addr()
		if a.Tentative || multicast6.Contains(addr) || addr.IsUnspecified() {
			return
		}
		var scopeRank int
		if sc >= dstScope {
			scopeRank = -sc
		} else {
			scopeRank = sc - 128
		}
		onDev := 0
		if dev == nil || a.Link == dev.link.Name {
			onDev = 1
		}
		prefix := min(commonPrefixLen(addr, dst), a.Prefix.Bits())
		score := [6]int{b2i(addr == dst), scopeRank, b2i(!a.Deprecated || sc <= 2), onDev, b2i(label == dstLabel), prefix}
		if best == nil || greater(score, bestScore) {
			best, bestScore = a, score
		}
	}
	if onlyDev {
		for i, a := range dev.addr6 {
			consider(a, dev.label6[i], dev.scope6[i])
		}
	} else {
		for _, d := range ix.byIndex {
			for i, a := range d.addr6 {
				consider(a, d.label6[i], d.scope6[i])
			}
		}
	}
	if best == nil {
		return netip.Addr{}
	}
	return best.Prefix.Addr()
}

func greater(a, b [6]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return false
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
