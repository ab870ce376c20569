package fib

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
)

// setDirect4 sets the direct table's thresholds for one test.
func setDirect4(t *testing.T, minPrefixes, maxLong int) {
	t.Helper()
	oldMin, oldLong := direct4MinPrefixes, direct4MaxLong
	direct4MinPrefixes, direct4MaxLong = minPrefixes, maxLong
	t.Cleanup(func() { direct4MinPrefixes, direct4MaxLong = oldMin, oldLong })
}

// direct4Kinds counts the blocks of a direct table answered by a slot, by
// a group of longer prefixes, and by the trie.
func direct4Kinds(dt *direct4) (direct, long, fallback int) {
	for _, e := range dt.tbl {
		switch {
		case e == direct4Fallback:
			fallback++
		case e >= direct4Long:
			long++
		case e != 0:
			direct++
		}
	}
	return direct, long, fallback
}

// ipv4 is the IPv4 address of a number, 0.0.0.0 included (addr4 makes
// that the zero Addr).
func ipv4(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// checkDirect4Slots checks that every table of a model's fast path chain
// has a direct table (the thresholds are lowered) and that it holds the
// trie's slots: the index's mirror of the trie is the trie.
func checkDirect4Slots(t *testing.T, m *Model) {
	t.Helper()
	for _, tab := range m.idx.chain4 {
		if tab == nil || tab.trie.Size4() < direct4MinPrefixes {
			continue
		}
		if tab.dir == nil {
			t.Fatalf("table %s of %d prefixes has no direct table", tab.id, tab.trie.Size4())
		}
		want := sortPrefixes4(trieSlots4(&tab.trie))
		if len(want) != len(tab.dir.slots) {
			t.Fatalf("table %s: %d slots in the direct table, %d prefixes in the trie", tab.id, len(tab.dir.slots), len(want))
		}
		for i, p := range want {
			if got := tab.dir.slots[i]; got != p.s || key4(m.st.Routes[got.idx].Dst) != p.key {
				t.Fatalf("table %s: slot %d is %+v (route %s), the trie's %+v", tab.id, i, got, m.st.Routes[got.idx].Dst, p.s)
			}
		}
	}
}

// TestDirect4MatchesTrie compares the direct table's answer with the
// trie's Lookup on random tables: prefixes of every length spread over
// the whole space, prefixes crowded into a few blocks (groups of longer
// prefixes and the fallback to the trie), /0, host routes and the edges
// of the address space.
func TestDirect4MatchesTrie(t *testing.T) {
	spread := func(r *rand.Rand) netip.Prefix {
		return netip.PrefixFrom(randomAddr(r, V4), r.IntN(33)).Masked()
	}
	crowded := func(r *rand.Rand) netip.Prefix {
		a := netip.AddrFrom4([4]byte{10, byte(r.IntN(2)), byte(r.IntN(64)), byte(r.IntN(256))})
		return netip.PrefixFrom(a, []int{0, 8, 16, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 32, 32}[r.IntN(18)]).Masked()
	}
	edges := func(r *rand.Rand) netip.Prefix {
		a := []netip.Addr{netip.IPv4Unspecified(), limitedBcast, netip.AddrFrom4([4]byte{255, 255, 255, 0}), netip.AddrFrom4([4]byte{0, 0, 0, 255})}[r.IntN(4)]
		return netip.PrefixFrom(a, []int{0, 1, 21, 22, 23, 24, 25, 31, 32}[r.IntN(9)]).Masked()
	}
	for _, tc := range []struct {
		name    string
		maxLong int
		size    func(r *rand.Rand) int
		prefix  func(r *rand.Rand) netip.Prefix
	}{
		{"spread", 8, func(r *rand.Rand) int { return 1 + r.IntN(3000) }, spread},
		{"crowded", 8, func(r *rand.Rand) int { return 1 + r.IntN(800) }, crowded},
		{"crowded-maxlong-1", 1, func(r *rand.Rand) int { return 1 + r.IntN(300) }, crowded},
		{"crowded-maxlong-0", 0, func(r *rand.Rand) int { return 1 + r.IntN(300) }, crowded},
		{"edges", 2, func(r *rand.Rand) int { return 1 + r.IntN(20) }, edges},
		{"mixed", 3, func(r *rand.Rand) int { return r.IntN(500) }, func(r *rand.Rand) netip.Prefix {
			return []func(*rand.Rand) netip.Prefix{spread, crowded, edges}[r.IntN(3)](r)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setDirect4(t, 0, tc.maxLong)
			r := rand.New(rand.NewPCG(21, uint64(len(tc.name))))
			var direct, long, fallback int
			for round := range 12 {
				tab := &table{}
				var prefixes []netip.Prefix
				for i := range tc.size(r) {
					p := tc.prefix(r)
					tab.trie.Insert(p, slot{idx: uint32(i), shape: r.Uint32()})
					prefixes = append(prefixes, p)
				}
				tab.dir = buildDirect4(trieSlots4(&tab.trie))
				if tab.dir == nil {
					t.Fatalf("round %d: no direct table for %d prefixes", round, len(prefixes))
				}
				d, l, f := direct4Kinds(tab.dir)
				direct, long, fallback = direct+d, long+l, fallback+f
				check := func(a netip.Addr) {
					t.Helper()
					want, wantOK := tab.trie.Lookup(a)
					got, ok := tab.lookup4(uint4(a), a)
					if got != want || ok != wantOK {
						t.Fatalf("round %d: %s: direct %+v %t, trie %+v %t (%d prefixes, the first %v)", round, a, got, ok, want, wantOK, len(prefixes), prefixes[:min(len(prefixes), 20)])
					}
				}
				for _, p := range prefixes {
					first := uint4(p.Addr())
					last := first | ^uint32(0)>>p.Bits()
					if p.Bits() == 0 {
						last = ^uint32(0)
					}
					// Every address of the block of a prefix longer than
					// a block, and the edges of every prefix.
					if p.Bits() > direct4Bits {
						for low := range direct4LowMask + 1 {
							check(ipv4(first&^direct4LowMask | low))
						}
					}
					for _, v := range []uint32{first - 1, first, first + 1, last - 1, last, last + 1} {
						check(ipv4(v))
					}
				}
				for range 20000 {
					check(randomAddr(r, V4))
				}
				check(netip.IPv4Unspecified())
				check(limitedBcast)
			}
			t.Logf("blocks answered directly %d, by groups %d, by the trie %d", direct, long, fallback)
			if tc.name != "edges" && (direct == 0 || (tc.maxLong > 0 && long == 0) || (tc.name == "crowded-maxlong-1" && fallback == 0)) {
				t.Errorf("the tables did not exercise every kind of entry: direct %d, groups %d, fallback %d", direct, long, fallback)
			}
		})
	}
}

// TestDirect4Threshold checks that a table of the fast path's chain gets a
// direct table from direct4MinPrefixes prefixes on, and that the model's
// fast path then answers as the trie does, at the real thresholds.
func TestDirect4Threshold(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a model of direct4MinPrefixes routes; skipped with -short")
	}
	// Random prefixes repeat (there are 256 /8s): some more routes than
	// the threshold make as many distinct prefixes.
	n := direct4MinPrefixes + direct4MinPrefixes/4
	m, dsts := benchModel(V4, n)
	m.Freeze()
	checkDirect4Slots(t, m)
	if m.idx.main4 == nil || m.idx.main4.dir == nil {
		t.Fatalf("table main of %d routes (%d prefixes) has no direct table", n, m.idx.main4.trie.Size4())
	}
	small, _ := benchModel(V4, 1000)
	small.Freeze()
	if small.idx.main4.dir != nil {
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
	ps := trieSlots4(&m.idx.main4.trie)
	b.ReportAllocs()
	for b.Loop() {
		if buildDirect4(ps) == nil {
			b.Fatal("no direct table")
		}
	}
}
