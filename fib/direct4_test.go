package fib

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"

	"github.com/fibguard/fibguard/fib/internal/direct"
)

// setDirect4 sets the direct tables' thresholds for one test.
func setDirect4(t *testing.T, minPrefixes, maxLong int) {
	t.Helper()
	oldMin, oldLong := direct.MinPrefixes, direct.MaxLong
	direct.MinPrefixes, direct.MaxLong = minPrefixes, maxLong
	t.Cleanup(func() { direct.MinPrefixes, direct.MaxLong = oldMin, oldLong })
}

// ipv4 is the IPv4 address of a number, 0.0.0.0 included (addr4 makes
// that the zero Addr).
func ipv4(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// checkDirect4Slots checks that every table of a model's fast path chain
// has a direct table (the thresholds are lowered) and that it holds the
// trie's slots, in CIDR order: the index's mirror of the trie, which the
// direct tables are built from, is the trie.
func checkDirect4Slots(t *testing.T, m *Model) {
	t.Helper()
	for _, tab := range m.idx.chain4 {
		if tab == nil || tab.Trie.Size4() < direct.MinPrefixes {
			continue
		}
		if tab.Dir4 == nil {
			t.Fatalf("table %s of %d prefixes has no direct table", tab.id, tab.Trie.Size4())
		}
		got := tab.Dir4.Values()
		if len(got) != tab.Trie.Size4() {
			t.Fatalf("table %s: %d slots in the direct table, %d prefixes in the trie", tab.id, len(got), tab.Trie.Size4())
		}
		i := 0
		for p, s := range tab.Trie.AllSorted4() {
			if got[i] != s || m.st.Routes[got[i].Idx].Dst != p {
				t.Fatalf("table %s: slot %d is %+v (route %s), the trie's %+v (%s)", tab.id, i, got[i], m.st.Routes[got[i].Idx].Dst, s, p)
			}
			i++
		}
	}
}

// TestDirect4Threshold checks that a table of the fast path's chain gets a
// direct table from direct.MinPrefixes prefixes on, and that the model's
// fast path then answers as the trie does, at the real thresholds.
func TestDirect4Threshold(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a model of direct.MinPrefixes routes; skipped with -short")
	}
	// Random prefixes repeat (there are 256 /8s): some more routes than
	// the threshold make as many distinct prefixes.
	n := direct.MinPrefixes + direct.MinPrefixes/4
	m, dsts := benchModel(V4, n)
	m.Freeze()
	checkDirect4Slots(t, m)
	if m.idx.main4 == nil || m.idx.main4.Dir4 == nil {
		t.Fatalf("table main of %d routes (%d prefixes) has no direct table", n, m.idx.main4.Trie.Size4())
	}
	small, _ := benchModel(V4, 1000)
	small.Freeze()
	if small.idx.main4.Dir4 != nil {
		t.Fatalf("table main of 1000 routes has a direct table")
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 50000 {
		dst := dsts[r.IntN(len(dsts))]
		if r.IntN(2) == 0 {
			p := m.st.Routes[r.IntN(len(m.st.Routes))].Dst
			dst = ipv4(uint4(p.Addr()) | r.Uint32()>>p.Bits())
		}
		got, want := fastAndGeneral(t, m, Query{Dst: dst, NoTrace: true})
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: fast %s, general %s", dst, &got, &want)
		}
	}
}

// BenchmarkBuildDirect4 measures building the direct table of a table of
// 1M random routes from its prefixes and slots, part of
// BenchmarkDecodeSnapshot's freezing.
func BenchmarkBuildDirect4(b *testing.B) {
	m, _ := benchModel(V4, 1_000_000)
	m.Freeze()
	ps := direct.FromTrie4(&m.idx.main4.Trie)
	b.ReportAllocs()
	for b.Loop() {
		if direct.Build4(ps) == nil {
			b.Fatal("no direct table")
		}
	}
}
