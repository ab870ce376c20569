package fib

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"

	"github.com/fibguard/fibguard/fib/internal/direct"
	"github.com/fibguard/fibguard/fib/internal/fast"
)

// ipv6 is the IPv6 address of its top and bottom 64 bits.
func ipv6(hi, lo uint64) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return netip.AddrFrom16(b)
}

// checkDirect6Slots checks the direct tables of a model's IPv6 fast path
// chain (the thresholds are lowered): every table that has prefixes to
// form a region has one, over that region, and its slots are the trie's,
// one per prefix in the region and for the longest covering it: the
// index's mirror of the trie is the trie.
func checkDirect6Slots(t *testing.T, m *Model) {
	t.Helper()
	for _, tab := range m.idx.chain6 {
		if tab == nil || tab.Trie.Size6() < direct.MinPrefixes {
			continue
		}
		region, ok := direct.Region6(direct.FromTrie6(&tab.Trie))
		if tab.Dir6 == nil {
			if ok {
				t.Fatalf("table %s has a region %s but no direct table", tab.id, region)
			}
			continue
		}
		if got := tab.Dir6.Region(); got != region {
			t.Fatalf("table %s: region %s, want %s", tab.id, got, region)
		}
		want := 0
		covering := false
		for p := range tab.Trie.All6() {
			if p.Bits() > region.Bits() && region.Contains(p.Addr()) {
				want++
			}
			if p.Bits() <= region.Bits() && p.Contains(region.Addr()) {
				covering = true
			}
		}
		if covering {
			want++
		}
		slots := tab.Dir6.Values()
		if len(slots) != want {
			t.Fatalf("table %s: %d slots in the direct table, %d prefixes in the region", tab.id, len(slots), want)
		}
		for i, s := range slots {
			if got, ok := tab.Trie.Get(m.st.Routes[s.Idx].Dst); !ok || got != s {
				t.Fatalf("table %s: slot %d is %+v (route %s), the trie's %+v %t", tab.id, i, s, m.st.Routes[s.Idx].Dst, got, ok)
			}
		}
	}
}

// answers reports whether a direct table answers for dst without the trie.
func answers(dt *direct.Table6[fast.Slot], dst netip.Addr) bool {
	_, _, trie := dt.Lookup(dst)
	return !trie
}

// TestDirect6Threshold checks that a big IPv6 table of the fast path's
// chain gets a direct table at the real thresholds, over the benchmark's
// region, and that the model's fast path then answers as the general
// path does.
func TestDirect6Threshold(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a model of direct.MinPrefixes routes; skipped with -short")
	}
	// Short random prefixes repeat (a tenth of the routes are of /16 to
	// /20): more routes than the threshold make as many distinct prefixes.
	n := direct.MinPrefixes + direct.MinPrefixes/2
	m, dsts := benchModel(V6, n)
	m.Freeze()
	checkDirect6Slots(t, m)
	main := m.idx.table(V6, TableMain)
	if main == nil || main.Dir6 == nil {
		t.Fatalf("table main of %d routes (%d prefixes) has no direct table", n, main.Trie.Size6())
	}
	if got := main.Dir6.Region(); got != netip.MustParsePrefix("2001::/16") {
		t.Fatalf("region %s, want 2001::/16", got)
	}
	small, _ := benchModel(V6, 1000)
	small.Freeze()
	if small.idx.table(V6, TableMain).Dir6 != nil {
		t.Fatalf("table main of 1000 routes has a direct table")
	}
	r := rand.New(rand.NewPCG(5, 7))
	for range 50000 {
		dst := dsts[r.IntN(len(dsts))]
		if r.IntN(2) == 0 {
			p := m.st.Routes[r.IntN(len(m.st.Routes))].Dst
			b := p.Addr().As16()
			hi := binary.BigEndian.Uint64(b[:8])
			dst = ipv6(hi|r.Uint64()>>p.Bits(), r.Uint64())
		}
		got, want := fastAndGeneral(t, m, Query{Dst: dst, NoTrace: true})
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: fast %s, general %s", dst, &got, &want)
		}
	}
}

// BenchmarkBuildDirect6 measures building the direct table of a table of
// 1M random IPv6 routes from its prefixes and slots.
func BenchmarkBuildDirect6(b *testing.B) {
	m, _ := benchModel(V6, 1_000_000)
	m.Freeze()
	ps := direct.FromTrie6(&m.idx.table(V6, TableMain).Trie)
	b.ReportAllocs()
	for b.Loop() {
		if direct.Build6(ps) == nil {
			b.Fatal("no direct table")
		}
	}
}
