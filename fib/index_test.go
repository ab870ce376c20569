package fib

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/fibguard/fibguard/fib/internal/direct"
	"github.com/fibguard/fibguard/fib/internal/fast"
)

// randomRoutes returns n unicast routes in table main over random prefixes
// of the family, all through device "eth0".
func randomRoutes(r *rand.Rand, f Family, n int) []Route {
	routes := make([]Route, 0, n)
	for range n {
		var p netip.Prefix
		if f == V4 {
			var b [4]byte
			for i := range b {
				b[i] = byte(r.IntN(256))
			}
			p = netip.PrefixFrom(netip.AddrFrom4(b), 8+r.IntN(25)).Masked()
		} else {
			var b [16]byte
			b[0], b[1] = 0x20, 0x01
			for i := 2; i < 8; i++ {
				b[i] = byte(r.IntN(256))
			}
			p = netip.PrefixFrom(netip.AddrFrom16(b), 16+r.IntN(49)).Masked()
		}
		routes = append(routes, Route{Family: f, Table: TableMain, Type: TypeUnicast, Dst: p, Scope: ScopeLink, Metric: uint32(r.IntN(3)), NextHops: []NextHop{{Link: "eth0"}}})
	}
	return routes
}

func randomAddr(r *rand.Rand, f Family) netip.Addr {
	if f == V4 {
		return netip.AddrFrom4([4]byte{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
	}
	var b [16]byte
	b[0], b[1] = 0x20, 0x01
	for i := 2; i < 16; i++ {
		b[i] = byte(r.IntN(256))
	}
	return netip.AddrFrom16(b)
}

// TestIndexGolden compares the trie and its walk to shorter prefixes, and
// the direct tables, against a slow, obviously correct reference: every
// prefix that contains the address, longest first.
func TestIndexGolden(t *testing.T) {
	for _, f := range []Family{V4, V6} {
		r := rand.New(rand.NewPCG(1, uint64(f)))
		for round := range 20 {
			m := &Model{st: State{Links: []Link{{Index: 1, Name: "eth0", Kind: KindOther, Up: true}}}}
			m.st.Routes = randomRoutes(r, f, 50+r.IntN(400))
			ix := m.index()
			tab := ix.table(f, TableMain)
			// The direct table of the fast path, with at most one
			// longer prefix per block in its lists.
			setDirect4(t, 0, 1)
			if f == V4 {
				tab.Dir4 = direct.Build4(direct.FromTrie4(&tab.Trie))
			} else if tab.Dir6 = direct.Build6(direct.FromTrie6(&tab.Trie)); tab.Dir6 == nil {
				t.Fatalf("%s round %d: no direct table", f, round)
			}
			for range 500 {
				dst := randomAddr(r, f)
				if r.IntN(2) == 0 {
					rt := m.st.Routes[r.IntN(len(m.st.Routes))]
					dst = rt.Dst.Addr()
				}
				var got []netip.Prefix
				for es := tab.lookup(dst); es != nil; es = tab.shorter(es) {
					got = append(got, es[0].route.Dst)
				}
				want := slowCovering(m.st.Routes, dst)
				chain := []*fast.Table{&tab.Table}
				s, at := fast.Find6(chain, dst)
				if f == V4 {
					s, at = fast.Find4(chain, uint4(dst), dst)
				}
				ok := at == 0
				if ok != (len(want) > 0) || (ok && m.st.Routes[s.Idx].Dst != want[0]) {
					t.Fatalf("%s round %d: %s: direct table found %t %v, want %v", f, round, dst, ok, s, want)
				}
				if len(got) != len(want) {
					t.Fatalf("%s round %d: %s: got chain %v, want %v", f, round, dst, got, want)
				}
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("%s round %d: %s: got chain %v, want %v", f, round, dst, got, want)
					}
				}
			}
		}
	}
}

// slowCovering returns the distinct prefixes of routes that contain dst,
// longest first.
func slowCovering(routes []Route, dst netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	for bits := dst.BitLen(); bits >= 0; bits-- {
		p := netip.PrefixFrom(dst, bits).Masked()
		for _, r := range routes {
			if r.Dst == p {
				out = append(out, p)
				break
			}
		}
	}
	return out
}
