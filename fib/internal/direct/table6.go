package direct

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"slices"

	"github.com/gaissmai/bart"
)

// Table6 is the direct table of a big IPv6 table (Table4 for IPv6): the
// same tbl of 1<<Bits blocks with the same encoding, over a region
// of the address space that holds most of the table's prefixes — a big
// IPv6 table is a few allocations split into many prefixes, not the whole
// space. Blocks are the region's length plus Bits bits long
// (2001::/16: /38 blocks). A destination outside the region asks the trie;
// inside it, its block's entry answers as Table4's does, the short lists
// comparing full 128-bit prefixes. It answers exactly what the trie's
// Lookup answers: the value of the longest prefix covering the address.
type Table6[V any] struct {
	// tbl and vals are Table4's, for the blocks of the region: the
	// entry of a block with no longer prefix is the longest prefix of at
	// most the block's length covering it, the region's own default (the
	// longest prefix of at most the region's length covering the region)
	// included.
	tbl  []uint32
	vals []V
	// long holds the groups of blocks with longer prefixes: at the group's
	// offset, a header (hi: their number k; v and bits != 0: the value the
	// block would have without them, if any), then the k prefixes, longest
	// first. The values are in the group: a lookup reads one place less.
	long []long6[V]
	// hi is the region's address (its top 64 bits, masked), mask the mask
	// of its length rbits (at most 64 - Bits).
	hi, mask uint64
	rbits    uint8
}

// long6 is a prefix longer than its block in a short list: the top and
// bottom 64 bits of its address, its value and its length.
type long6[V any] struct {
	hi, lo uint64
	v      V
	bits   uint8
}

const (
	// region6MaxBits is the longest region: its blocks' index is read
	// from the address's top 64 bits.
	region6MaxBits = 64 - Bits
	// region6MinPrefixBits is the length from which prefixes count when
	// the region is chosen: shorter ones (::/0, 2000::/3) cover it rather
	// than lie in it.
	region6MinPrefixBits = 16
)

// Lookup returns the value of the longest prefix covering the IPv6
// address dst, and ok false if none covers it; with trie set the table
// does not know (dst is outside the region, or its block holds more than
// MaxLong longer prefixes) and the trie must answer.
func (dt *Table6[V]) Lookup(dst netip.Addr) (v V, ok, trie bool) {
	b := dst.As16()
	hi := binary.BigEndian.Uint64(b[:8])
	if (hi^dt.hi)&dt.mask != 0 {
		return v, false, true
	}
	e := dt.tbl[hi<<dt.rbits>>(64-Bits)]
	if e < direct4Long {
		if e == 0 {
			return v, false, false
		}
		return dt.vals[e-1], true, false
	}
	if e == direct4Fallback {
		return v, false, true
	}
	g := dt.long[e-direct4Long:]
	k := int(g[0].hi)
	lo := binary.BigEndian.Uint64(b[8:])
	for i := 1; i <= k; i++ {
		l := &g[i]
		if l.bits <= 64 {
			if (hi^l.hi)>>(64-l.bits) == 0 {
				return l.v, true, false
			}
		} else if hi == l.hi && (lo^l.lo)>>(128-l.bits) == 0 {
			return l.v, true, false
		}
	}
	return g[0].v, g[0].bits != 0, false
}

// Prefix6 is an IPv6 prefix of a trie (its address's top and bottom 64
// bits and its length) and its value while a direct table is built.
type Prefix6[V any] struct {
	hi, lo uint64
	v      V
	bits   uint8
}

// NewPrefix6 returns the Prefix6 of a prefix and its value.
func NewPrefix6[V any](p netip.Prefix, v V) Prefix6[V] {
	p = p.Masked()
	b := p.Addr().As16()
	return Prefix6[V]{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:]), v: v, bits: uint8(p.Bits())}
}

// region6 returns the longest prefix (its masked top 64 bits and its
// length, at most region6MaxBits) that contains at least 90 % of the
// prefixes of at least region6MinPrefixBits bits; false if there are none.
//
// The region is found from candidates: a few of those prefixes, spread
// over the list (at least one of them lies in any region holding 90 % of
// them). For each, one pass counts the prefixes by the length they share
// with it.
func region6[V any](ps []Prefix6[V]) (uint64, uint8, bool) {
	n := 0
	for _, p := range ps {
		if p.bits >= region6MinPrefixBits {
			n++
		}
	}
	if n == 0 {
		return 0, 0, false
	}
	need := n - n/10
	const samples = 5
	bestHi, bestBits := uint64(0), -1
	for k := range samples {
		// The first eligible prefix from the k-th tenth on, for odd
		// tenths.
		i := (2*k + 1) * len(ps) / (2 * samples)
		for i < len(ps) && ps[i].bits < region6MinPrefixBits {
			i++
		}
		if i == len(ps) {
			continue
		}
		c := ps[i]
		maxBits := min(int(c.bits), region6MaxBits)
		var hist [region6MaxBits + 1]int
		for _, p := range ps {
			if p.bits < region6MinPrefixBits {
				continue
			}
			shared := min(bits.LeadingZeros64(p.hi^c.hi), int(p.bits), maxBits)
			hist[shared]++
		}
		inside := 0
		for l := maxBits; l >= 0; l-- {
			inside += hist[l]
			if inside >= need {
				if l > bestBits {
					bestHi, bestBits = c.hi&prefixMask64(l), l
				}
				break
			}
		}
	}
	if bestBits < 0 {
		return 0, 0, false
	}
	return bestHi, uint8(bestBits), true
}

// prefixMask64 is the mask of the top n bits of 64.
func prefixMask64(n int) uint64 {
	if n == 0 {
		return 0
	}
	return ^uint64(0) << (64 - n)
}

// Build6 returns the direct table of the IPv6 prefixes of a trie and
// their values, given in any order; nil if there is no region or too many
// prefixes for the encoding.
//
// The prefixes in the region and its default become keys of Table4's
// sweep (their values their index in ps): the 32 bits after the region as the address, the length beyond
// the region's as the length (the default: /0). Prefixes longer than a
// block all get their block's address and length 63: the sweep only hands
// them back, and their short lists compare the full prefixes.
func Build6[V any](ps []Prefix6[V]) *Table6[V] {
	if len(ps) >= int(direct4Long-1) {
		return nil
	}
	hi, rbits, ok := region6(ps)
	if !ok {
		return nil
	}
	mask := prefixMask64(int(rbits))
	vs := make([]Prefix4[uint32], 0, len(ps))
	def := -1
	for i, p := range ps {
		if p.bits <= rbits {
			// A prefix covering the region: the longest is its default.
			if (p.hi^hi)&prefixMask64(int(p.bits)) == 0 && (def < 0 || p.bits > ps[def].bits) {
				def = i
			}
			continue
		}
		if (p.hi^hi)&mask != 0 {
			continue
		}
		v, vbits := uint64(uint32(p.hi<<rbits>>32)), uint64(p.bits-rbits)
		if vbits > Bits {
			v, vbits = v&^uint64(direct4LowMask), 63
		}
		vs = append(vs, Prefix4[uint32]{key: v<<6 | vbits, v: uint32(i)})
	}
	if def >= 0 {
		vs = append(vs, Prefix4[uint32]{key: 0, v: uint32(def)})
	}
	vs = sortPrefixes4(vs)
	for i := 1; i < len(vs); i++ {
		if vs[i-1].key == vs[i].key && vs[i].key&63 <= Bits {
			return nil
		}
	}
	d4, longs := sweepDirect(vs)
	dt := &Table6[V]{tbl: d4.tbl, vals: make([]V, len(d4.vals)), hi: hi, mask: mask, rbits: rbits}
	if !dt.addLong(longs, ps, d4.vals) {
		return nil
	}
	for i, at := range d4.vals {
		dt.vals[i] = ps[at].v
	}
	return dt
}

// addLong points the blocks holding the prefixes longer than a block (as
// sweepDirect returns them, those of one block adjacent; at the index in ps
// of each of the sweep's prefixes) to their groups. It reports false if
// long outgrows its encoding.
func (dt *Table6[V]) addLong(longs []longPrefix4, ps []Prefix6[V], at []uint32) bool {
	dt.long = make([]long6[V], 0, countBlocks(longs)+len(longs))
	for blk, group := range blockRuns(longs) {
		k := len(group)
		if k > MaxLong {
			dt.tbl[blk] = direct4Fallback
			continue
		}
		off := uint32(len(dt.long))
		if off >= direct4Fallback-direct4Long-uint32(1+k) {
			return false
		}
		head := long6[V]{hi: uint64(k)}
		if e := dt.tbl[blk]; e != 0 {
			head.v, head.bits = ps[at[e-1]].v, 1
		}
		dt.long = append(dt.long, head)
		for _, l := range group {
			dt.long = append(dt.long, long6[V](ps[at[l.id-1]]))
		}
		// Longest first (stable; prefixes of one length are disjoint).
		slices.SortStableFunc(dt.long[off+1:], func(a, b long6[V]) int { return int(b.bits) - int(a.bits) })
		dt.tbl[blk] = direct4Long + off
	}
	return true
}

// FromTrie6 returns the IPv6 prefixes of a trie and their values, in the
// trie's order.
func FromTrie6[V any](trie *bart.Table[V]) []Prefix6[V] {
	ps := make([]Prefix6[V], 0, trie.Size6())
	for p, v := range trie.All6() {
		ps = append(ps, NewPrefix6(p, v))
	}
	return ps
}

// Region6 returns the region a direct table of the prefixes covers (see
// Build6); false if there is none.
func Region6[V any](ps []Prefix6[V]) (netip.Prefix, bool) {
	hi, rbits, ok := region6(ps)
	if !ok {
		return netip.Prefix{}, false
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], hi)
	return netip.PrefixFrom(netip.AddrFrom16(b), int(rbits)), true
}

// Region returns the region the table covers.
func (dt *Table6[V]) Region() netip.Prefix {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], dt.hi)
	return netip.PrefixFrom(netip.AddrFrom16(b), int(dt.rbits))
}

// Values returns the table's values: those of the trie's prefixes in the
// region, and of the longest prefix covering the region if any.
func (dt *Table6[V]) Values() []V { return dt.vals }

// Kinds counts the blocks of the table answered by a value, by a group of
// longer prefixes, and by the trie.
func (dt *Table6[V]) Kinds() (direct, long, fallback int) { return kinds(dt.tbl) }
