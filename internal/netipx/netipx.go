// Package netipx holds the few net/netip helpers the standard library
// lacks that several of fibguard's packages need: the last address of a
// prefix, and the conversions from the net.IP and net.IPNet values of CNI
// results (in the spirit of go4.org/netipx, whose conversions treat
// IPv4-mapped addresses differently than a CNI result needs).
package netipx

import (
	"net"
	"net/netip"
)

// LastAddr returns the highest address of p: the broadcast address of an
// IPv4 subnet.
func LastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96 // As16 puts an IPv4 address in the last 4 bytes
	}
	for i := range b {
		keep := min(max(bits-8*i, 0), 8)
		b[i] |= byte(0xff >> keep)
	}
	a := netip.AddrFrom16(b)
	if p.Addr().Is4() {
		return a.Unmap()
	}
	return a
}

// FromIP converts ip, an IPv4 address in its 4-byte form however ip holds
// it; ok is false for nil and for a slice of neither 4 nor 16 bytes.
func FromIP(ip net.IP) (netip.Addr, bool) {
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	return netip.AddrFromSlice(ip)
}

// FromIPNet converts an address with its subnet's mask, as a CNI result
// holds it, keeping the host bits. The mask's length tells the family: a
// 4-byte mask is IPv4 whatever the IP's length, a 16-byte mask over an
// IPv4 address keeps it IPv4-mapped, as it was written. ok is false for a
// mask that is not a prefix length and for an IP that does not fit it.
func FromIPNet(n net.IPNet) (netip.Prefix, bool) {
	ones, bits := n.Mask.Size()
	var a netip.Addr
	switch bits {
	case 32:
		ip4 := n.IP.To4()
		if ip4 == nil {
			return netip.Prefix{}, false
		}
		a = netip.AddrFrom4([4]byte(ip4))
	case 128:
		ip16 := n.IP.To16()
		if ip16 == nil {
			return netip.Prefix{}, false
		}
		a = netip.AddrFrom16([16]byte(ip16))
	default:
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones), true
}
