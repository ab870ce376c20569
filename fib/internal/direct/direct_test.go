package direct

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/gaissmai/bart"
)

// val is a value as fib's tries hold them: 8 bytes.
type val struct{ idx, shape uint32 }

var limitedBcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// setMaxLong sets MaxLong for one test.
func setMaxLong(t *testing.T, maxLong int) {
	t.Helper()
	old := MaxLong
	MaxLong = maxLong
	t.Cleanup(func() { MaxLong = old })
}

// lookup4 answers as fib's table does: the direct table, or the trie
// where the table says so.
func lookup4(dt *Table4[val], trie *bart.Table[val], a netip.Addr) (val, bool) {
	b := a.As4()
	if v, ok, fall := dt.Lookup(binary.BigEndian.Uint32(b[:])); !fall {
		return v, ok
	}
	return trie.Lookup(a)
}

// lookup6 is lookup4 for IPv6.
func lookup6(dt *Table6[val], trie *bart.Table[val], a netip.Addr) (val, bool) {
	if v, ok, fall := dt.Lookup(a); !fall {
		return v, ok
	}
	return trie.Lookup(a)
}

func ipv4(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func uint4(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// ipv6 is the IPv6 address of its top and bottom 64 bits.
func ipv6(hi, lo uint64) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return netip.AddrFrom16(b)
}

func randomAddr4(r *rand.Rand) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
}

// TestTable4MatchesTrie compares the direct table's answer with the
// trie's Lookup on random tables: prefixes of every length spread over
// the whole space, prefixes crowded into a few blocks (groups of longer
// prefixes and the fallback to the trie), /0, host routes and the edges
// of the address space.
func TestTable4MatchesTrie(t *testing.T) {
	spread := func(r *rand.Rand) netip.Prefix {
		return netip.PrefixFrom(randomAddr4(r), r.IntN(33)).Masked()
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
			setMaxLong(t, tc.maxLong)
			r := rand.New(rand.NewPCG(21, uint64(len(tc.name))))
			var direct, long, fallback int
			for round := range 12 {
				var trie bart.Table[val]
				var prefixes []netip.Prefix
				for i := range tc.size(r) {
					p := tc.prefix(r)
					trie.Insert(p, val{idx: uint32(i), shape: r.Uint32()})
					prefixes = append(prefixes, p)
				}
				dt := Build4(FromTrie4(&trie))
				if dt == nil {
					t.Fatalf("round %d: no direct table for %d prefixes", round, len(prefixes))
				}
				d, l, f := dt.Kinds()
				direct, long, fallback = direct+d, long+l, fallback+f
				check := func(a netip.Addr) {
					t.Helper()
					want, wantOK := trie.Lookup(a)
					got, ok := lookup4(dt, &trie, a)
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
					if p.Bits() > Bits {
						for low := range direct4LowMask + 1 {
							check(ipv4(first&^direct4LowMask | low))
						}
					}
					for _, v := range []uint32{first - 1, first, first + 1, last - 1, last, last + 1} {
						check(ipv4(v))
					}
				}
				for range 20000 {
					check(randomAddr4(r))
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

// TestTable6MatchesTrie compares the IPv6 direct table's answer with the
// trie's Lookup on random tables: prefixes of every length in a region,
// crowded into a few blocks (groups and the fallback to the trie), some
// outside it, prefixes shorter than the region covering it or not, /0,
// /128 and the edges of the space, of the region and of every block.
func TestTable6MatchesTrie(t *testing.T) {
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
			setMaxLong(t, tc.maxLong)
			r := rand.New(rand.NewPCG(23, uint64(len(tc.name))))
			var direct, long, fallback, built int
			regions := map[uint8]int{}
			for round := range 12 {
				var trie bart.Table[val]
				var prefixes []netip.Prefix
				for i := range tc.size(r) {
					p := tc.prefix(r)
					trie.Insert(p, val{idx: uint32(i), shape: r.Uint32()})
					prefixes = append(prefixes, p)
				}
				ps := FromTrie6(&trie)
				dt := Build6(ps)
				if _, _, ok := region6(ps); ok != (dt != nil) {
					t.Fatalf("round %d: region %t, direct table %t", round, ok, dt != nil)
				}
				if dt == nil {
					continue
				}
				built++
				regions[dt.rbits]++
				d, l, f := dt.Kinds()
				direct, long, fallback = direct+d, long+l, fallback+f
				check := func(a netip.Addr) {
					t.Helper()
					want, wantOK := trie.Lookup(a)
					got, ok := lookup6(dt, &trie, a)
					if got != want || ok != wantOK {
						t.Fatalf("round %d: %s: direct %+v %t, trie %+v %t (region %x/%d, %d prefixes, the first %v)", round, a, got, ok, want, wantOK, dt.hi, dt.rbits, len(prefixes), prefixes[:min(len(prefixes), 20)])
					}
				}
				blockBits := int(dt.rbits) + Bits
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
			var ps []Prefix6[val]
			seen := map[netip.Prefix]bool{}
			for i := range tc.n {
				p := tc.route(i)
				if !seen[p] {
					seen[p] = true
					ps = append(ps, NewPrefix6(p, val{idx: uint32(i)}))
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
