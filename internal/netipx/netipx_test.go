package netipx

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
)

func TestLastAddr(t *testing.T) {
	for _, tt := range []struct{ p, want string }{
		{"10.0.0.0/24", "10.0.0.255"},
		{"10.0.0.77/24", "10.0.0.255"},
		{"10.0.0.0/31", "10.0.0.1"},
		{"10.0.0.0/12", "10.15.255.255"},
		{"10.0.0.5/32", "10.0.0.5"},
		{"0.0.0.0/0", "255.255.255.255"},
		{"172.16.0.0/12", "172.31.255.255"},
		{"fd00::/64", "fd00::ffff:ffff:ffff:ffff"},
		{"fd00::1/128", "fd00::1"},
		{"fd00::/125", "fd00::7"},
		{"::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"::ffff:10.0.0.0/120", "::ffff:10.0.0.255"},
	} {
		if got := LastAddr(netip.MustParsePrefix(tt.p)); got.String() != tt.want {
			t.Errorf("LastAddr(%s) = %s, want %s", tt.p, got, tt.want)
		}
	}
}

// TestLastAddrRandom holds LastAddr to its definition on random prefixes
// of both families: in the prefix, and the next address is not.
func TestLastAddrRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		var a netip.Addr
		if r.IntN(2) == 0 {
			a = netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
		} else {
			var b [16]byte
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			a = netip.AddrFrom16(b)
		}
		p := netip.PrefixFrom(a, r.IntN(a.BitLen()+1))
		last := LastAddr(p)
		if next := last.Next(); !p.Contains(last) || (next.IsValid() && p.Contains(next)) {
			t.Fatalf("LastAddr(%s) = %s: not the prefix's last address", p, last)
		}
	}
}

func TestFromIP(t *testing.T) {
	for _, tt := range []struct {
		ip   net.IP
		want string // "" for not ok
	}{
		{net.ParseIP("10.0.0.1"), "10.0.0.1"}, // 16 bytes, IPv4-mapped
		{net.IPv4(10, 0, 0, 1).To4(), "10.0.0.1"},
		{net.ParseIP("fd00::1"), "fd00::1"},
		{nil, ""},
		{net.IP{1, 2, 3}, ""},
	} {
		got, ok := FromIP(tt.ip)
		if (tt.want == "") == ok || (ok && got.String() != tt.want) {
			t.Errorf("FromIP(%v) = %s, %v; want %q", []byte(tt.ip), got, ok, tt.want)
		}
	}
}

func TestFromIPNet(t *testing.T) {
	v4in16 := net.ParseIP("10.0.0.5")
	for _, tt := range []struct {
		name string
		n    net.IPNet
		want string // "" for not ok
	}{
		{"IPv4, 4-byte mask", net.IPNet{IP: v4in16, Mask: net.CIDRMask(24, 32)}, "10.0.0.5/24"},
		{"IPv4 in 4 bytes", net.IPNet{IP: v4in16.To4(), Mask: net.CIDRMask(24, 32)}, "10.0.0.5/24"},
		{"IPv4 with a 16-byte mask stays mapped", net.IPNet{IP: v4in16, Mask: net.CIDRMask(120, 128)}, "::ffff:10.0.0.5/120"},
		{"IPv6", net.IPNet{IP: net.ParseIP("fd00::5"), Mask: net.CIDRMask(64, 128)}, "fd00::5/64"},
		{"IPv6 with a 4-byte mask", net.IPNet{IP: net.ParseIP("fd00::5"), Mask: net.CIDRMask(24, 32)}, ""},
		{"mask that is no prefix length", net.IPNet{IP: v4in16, Mask: net.IPv4Mask(255, 0, 255, 0)}, ""},
		{"no mask", net.IPNet{IP: v4in16}, ""},
		{"no IP", net.IPNet{Mask: net.CIDRMask(24, 32)}, ""},
	} {
		got, ok := FromIPNet(tt.n)
		if (tt.want == "") == ok || (ok && got.String() != tt.want) {
			t.Errorf("%s: FromIPNet(%v) = %s, %v; want %q", tt.name, tt.n, got, ok, tt.want)
		}
	}
}
