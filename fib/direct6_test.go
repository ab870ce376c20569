package fib

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
)

// ipv6 is the IPv6 address of its top and bottom 64 bits.
func ipv6(hi, lo uint64) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return netip.AddrFrom16(b)
}

// direct6Kinds counts the blocks of an IPv6 direct table answered by a
// slot, by a group of longer prefixes, and by the trie.
func direct6Kinds(dt *direct6) (direct, long, fallback int) {
	return direct4Kinds(&direct4{tbl: dt.tbl})
}

// checkDirect6Slots checks the direct tables of a model's IPv6 fast path
// chain (the thresholds are lowered): every table that has prefixes to
// form a region has one, and its slots are the trie's, one per prefix of
// the region and its default: the index's mirror of the trie is the trie.
func checkDirect6Slots(t *testing.T, m *Model) {
	t.Helper()
	for _, tab := range m.idx.chain6 {
		if tab == nil || tab.trie.Size6() < direct4MinPrefixes {
			continue
		}
		ps := trieSlots6(&tab.trie)
		hi, rbits, ok := region6(ps)
		if tab.dir6 == nil {
			if ok {
				t.Fatalf("table %s of %d prefixes has a region but no direct table", tab.id, len(ps))
			}
			continue
		}
		if tab.dir6.hi != hi || tab.dir6.rbits != rbits {
			t.Fatalf("table %s: region %x/%d, want %x/%d", tab.id, tab.dir6.hi, tab.dir6.rbits, hi, rbits)
		}
		want := 0
		covering := false
		for _, p := range ps {
			if p.bits > rbits && (p.hi^hi)&prefixMask64(int(rbits)) == 0 {
				want++
			}
			if p.bits <= rbits && (p.hi^hi)&prefixMask64(int(p.bits)) == 0 {
				covering = true
			}
		}
		if covering {
			want++
		}
		if len(tab.dir6.slots) != want {
			t.Fatalf("table %s: %d slots in the direct table, %d prefixes in the region", tab.id, len(tab.dir6.slots), want)
		}
		for i, s := range tab.dir6.slots {
			if got, ok := tab.trie.Get(m.st.Routes[s.idx].Dst); !ok || got != s {
				t.Fatalf("table %s: slot %d is %+v (route %s), the trie's %+v %t", tab.id, i, s, m.st.Routes[s.idx].Dst, got, ok)
			}
		}
	}
}

// answers reports whether the direct table answers for dst without the
// trie: dst is in the region and its block does not fall back.
func (dt *direct6) answers(dst netip.Addr) bool {
	b := dst.As16()
	hi := binary.BigEndian.Uint64(b[:8])
	return (hi^dt.hi)&dt.mask == 0 && dt.tbl[hi<<dt.rbits>>(64-direct4Bits)] != direct4Fallback
}

// TestDirect6MatchesTrie compares the IPv6 direct table's answer with the
// trie's Lookup on random tables: prefixes of every length in a region,
// crowded into a few blocks (groups and the fallback to the trie), some
// outside it, prefixes shorter than the region covering it or not, /0,
// /128 and the edges of the space, of the region and of every block.
func TestDirect6MatchesTrie(t *testing.T) {
	base := uint64(0x20010db8) << 32 // 2001:db8::/32
	lengths := []int{32, 33, 40, 53, 54, 55, 56, 60, 63, 64, 65, 80, 96, 127, 128, 128}
	inRegion := func(r *rand.Rand, hi uint64) netip.Prefix {
		return netip.PrefixFrom(ipv6(hi, r.Uint64()), lengths[r.IntN(len(lengths))]).Masked()
	}
	inside := func(r *rand.Rand) netip.Prefix {
		return inRegion(r, base|r.Uint64()>>32)
	}
	crowded := func(r *rand.Rand) netip.Prefix {
		// Two blocks of /54 and their neighbours.
		return inRegion(r, base|uint64(r.IntN(4))<<(64-54)|r.Uint64()>>54)
	}
	covering := func(r *rand.Rand) netip.Prefix {
		if r.IntN(3) == 0 {
			return netip.PrefixFrom(ipv6(r.Uint64(), r.Uint64()), r.IntN(129)).Masked()
		}
		return netip.PrefixFrom(ipv6(base, 0), []int{0, 3, 16, 24, 31, 32}[r.IntN(6)]).Masked()
	}
	edges := func(r *rand.Rand) netip.Prefix {
		a := []netip.Addr{ipv6(0, 0), ipv6(^uint64(0), ^uint64(0)), ipv6(base, 0), ipv6(base|1<<32-1, ^uint64(0)), ipv6(base|1<<10-1, 0)}[r.IntN(5)]
		return netip.PrefixFrom(a, []int{0, 1, 32, 53, 54, 55, 64, 65, 127, 128}[r.IntN(10)]).Masked()
	}
	mostly := func(in func(*rand.Rand) netip.Prefix) func(*rand.Rand) netip.Prefix {
		return func(r *rand.Rand) netip.Prefix {
			switch r.IntN(20) {
			case 0:
				return covering(r)
			case 1:
				return edges(r)
			}
			return in(r)
		}
	}
	for _, tc := range []struct {
		name    string
		maxLong int
		size    func(r *rand.Rand) int
		prefix  func(r *rand.Rand) netip.Prefix
	}{
		{"inside", 8, func(r *rand.Rand) int { return 1 + r.IntN(3000) }, inside},
		{"mostly-inside", 8, func(r *rand.Rand) int { return 1 + r.IntN(3000) }, mostly(inside)},
		{"crowded", 8, func(r *rand.Rand) int { return 1 + r.IntN(600) }, mostly(crowded)},
		{"crowded-maxlong-1", 1, func(r *rand.Rand) int { return 1 + r.IntN(300) }, mostly(crowded)},
		{"crowded-maxlong-0", 0, func(r *rand.Rand) int { return 1 + r.IntN(300) }, crowded},
		{"spread", 3, func(r *rand.Rand) int { return 1 + r.IntN(500) }, covering},
		{"edges", 2, func(r *rand.Rand) int { return 1 + r.IntN(20) }, edges},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setDirect4(t, 0, tc.maxLong)
			r := rand.New(rand.NewPCG(23, uint64(len(tc.name))))
			var direct, long, fallback, built int
			regions := map[uint8]int{}
			for round := range 12 {
				tab := &table{}
				var prefixes []netip.Prefix
				for i := range tc.size(r) {
					p := tc.prefix(r)
					tab.trie.Insert(p, slot{idx: uint32(i), shape: r.Uint32()})
					prefixes = append(prefixes, p)
				}
				ps := trieSlots6(&tab.trie)
				tab.dir6 = buildDirect6(ps)
				if _, _, ok := region6(ps); ok != (tab.dir6 != nil) {
					t.Fatalf("round %d: region %t, direct table %t", round, ok, tab.dir6 != nil)
				}
				if tab.dir6 == nil {
					continue
				}
				built++
				dt := tab.dir6
				regions[dt.rbits]++
				d, l, f := direct6Kinds(dt)
				direct, long, fallback = direct+d, long+l, fallback+f
				check := func(a netip.Addr) {
					t.Helper()
					want, wantOK := tab.trie.Lookup(a)
					got, ok := tab.lookup6(a)
					if got != want || ok != wantOK {
						t.Fatalf("round %d: %s: direct %+v %t, trie %+v %t (region %x/%d, %d prefixes, the first %v)", round, a, got, ok, want, wantOK, dt.hi, dt.rbits, len(prefixes), prefixes[:min(len(prefixes), 20)])
					}
				}
				blockBits := int(dt.rbits) + direct4Bits
				for _, p := range prefixes {
					first := p.Addr()
					b := first.As16()
					hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
					last := first
					if n := p.Bits(); n < 64 {
						last = ipv6(hi|^uint64(0)>>n, ^uint64(0))
					} else if n < 128 {
						last = ipv6(hi, lo|^uint64(0)>>(n-64))
					}
					for _, a := range []netip.Addr{first, first.Next(), first.Prev(), last, last.Next(), last.Prev()} {
						if a.IsValid() {
							check(a)
						}
					}
					// The block's edges, and addresses of the block
					// sharing the prefix up to each bit.
					blk := hi & prefixMask64(blockBits)
					check(ipv6(blk, 0))
					check(ipv6(blk|^prefixMask64(blockBits), ^uint64(0)))
					for bit := blockBits; bit < 128; bit += 1 + r.IntN(4) {
						if bit < 64 {
							check(ipv6(hi^1<<(63-bit), lo))
							check(ipv6(hi^1<<(63-bit)|r.Uint64()>>(bit+1), r.Uint64()))
						} else {
							check(ipv6(hi, lo^1<<(127-bit)))
							check(ipv6(hi, lo^1<<(127-bit)|r.Uint64()>>(bit-63)))
						}
					}
					for range 8 {
						check(ipv6(blk|r.Uint64()&^prefixMask64(blockBits), r.Uint64()))
					}
				}
				for range 5000 {
					check(ipv6(dt.hi|r.Uint64()&^dt.mask, r.Uint64()))
					check(ipv6(r.Uint64(), r.Uint64()))
				}
				check(ipv6(0, 0))
				check(ipv6(^uint64(0), ^uint64(0)))
				check(ipv6(dt.hi, 0))
				check(ipv6(dt.hi|^dt.mask, ^uint64(0)))
			}
			t.Logf("%d tables; regions by length %v; blocks answered directly %d, by groups %d, by the trie %d", built, regions, direct, long, fallback)
			if built == 0 || direct == 0 || (tc.maxLong > 0 && tc.name != "edges" && long == 0) || (tc.name == "crowded-maxlong-1" && fallback == 0) {
				t.Errorf("the tables did not exercise every kind of entry: %d tables, direct %d, groups %d, fallback %d", built, direct, long, fallback)
			}
		})
	}
}

// TestRegion6 checks the region chosen for tables of known shape.
func TestRegion6(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name  string
		n     int
		route func(i int) netip.Prefix
		want  netip.Prefix
		ok    bool
	}{
		{"benchmark", 5000, func(int) netip.Prefix {
			return netip.PrefixFrom(ipv6(0x2001<<48|r.Uint64()>>16, 0), 16+r.IntN(49)).Masked()
		}, netip.MustParsePrefix("2001::/16"), true},
		{"one /48 with a default", 3000, func(i int) netip.Prefix {
			if i == 0 {
				return netip.MustParsePrefix("::/0")
			}
			return netip.PrefixFrom(ipv6(0x20010db800070000|r.Uint64()&0xffff, r.Uint64()), 64+r.IntN(65)).Masked()
		}, netip.MustParsePrefix("2001:db8::/42"), true},
		{"a tenth elsewhere, first", 2000, func(i int) netip.Prefix {
			if i < 150 {
				return netip.PrefixFrom(ipv6(0xfd00<<48|r.Uint64()>>16, 0), 48).Masked()
			}
			return netip.PrefixFrom(ipv6(0x2a00<<48|r.Uint64()>>24, 0), 40+r.IntN(10)).Masked()
		}, netip.MustParsePrefix("2a00::/24"), true},
		{"only short prefixes", 100, func(i int) netip.Prefix {
			return netip.PrefixFrom(ipv6(uint64(i)<<56, 0), 8)
		}, netip.Prefix{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ps []prefixSlot6
			seen := map[netip.Prefix]bool{}
			for i := range tc.n {
				p := tc.route(i)
				if !seen[p] {
					seen[p] = true
					ps = append(ps, newPrefixSlot6(p, slot{idx: uint32(i)}))
				}
			}
			hi, rbits, ok := region6(ps)
			got := netip.Prefix{}
			if ok {
				got = netip.PrefixFrom(ipv6(hi, 0), int(rbits))
			}
			if ok != tc.ok || got != tc.want {
				t.Fatalf("region %s %t, want %s %t", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestDirect6Threshold checks that a big IPv6 table of the fast path's
// chain gets a direct table at the real thresholds, over the benchmark's
// region, and that the model's fast path then answers as the general
// path does.
func TestDirect6Threshold(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a model of direct4MinPrefixes routes; skipped with -short")
	}
	// Short random prefixes repeat (a tenth of the routes are of /16 to
	// /20): more routes than the threshold make as many distinct prefixes.
	n := direct4MinPrefixes + direct4MinPrefixes/2
	m, dsts := benchModel(V6, n)
	m.Freeze()
	checkDirect6Slots(t, m)
	main := m.idx.table(V6, TableMain)
	if main == nil || main.dir6 == nil {
		t.Fatalf("table main of %d routes (%d prefixes) has no direct table", n, main.trie.Size6())
	}
	if main.dir6.rbits != 16 || main.dir6.hi != 0x2001<<48 {
		t.Fatalf("region %x/%d, want 2001::/16", main.dir6.hi, main.dir6.rbits)
	}
	small, _ := benchModel(V6, 1000)
	small.Freeze()
	if small.idx.table(V6, TableMain).dir6 != nil {
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
	ps := trieSlots6(&m.idx.table(V6, TableMain).trie)
	b.ReportAllocs()
	for b.Loop() {
		if buildDirect6(ps) == nil {
			b.Fatal("no direct table")
		}
	}
}
