package fib

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/gaissmai/bart"
)

// direct4 is a direct-indexed copy of a big IPv4 table's trie for the
// output fast path (a DIR-24-8 variant): one read of tbl24 at the
// destination's /24 answers which prefix of at most 24 bits is the longest
// match, where walking the trie of a million prefixes costs several cache
// and TLB misses. A /24 that holds longer prefixes points to a short list
// of them instead, tried longest first; a /24 holding more than
// direct4MaxLong of them falls back to the trie, which bounds the memory
// to tbl24's 64 MiB plus a few words per prefix. It answers exactly what
// the trie's Lookup answers: the slot of the longest prefix covering the
// address.
type direct4 struct {
	// tbl24 is indexed by the destination's top 24 bits: 0 when no prefix
	// covers the /24 and none lies inside it; 1 + the index in slots of
	// the longest prefix of at most 24 bits covering it; or direct4Long
	// plus the offset in long of the /24's group; or direct4Fallback.
	tbl24 []uint32
	// slots are the trie's slots, one per prefix.
	slots []slot
	// long holds the groups of /24s with longer prefixes: at the group's
	// offset, the entry the /24 would have without them (0 or 1 + a
	// slots index), their number k, then k pairs, longest prefix first:
	// the prefix's last byte with its mask byte shifted left by 8, and 1 +
	// its slots index.
	long []uint32
}

const (
	direct4Long     uint32 = 1 << 31
	direct4Fallback uint32 = ^uint32(0)
)

// direct4MinPrefixes is the number of IPv4 prefixes from which a table of
// the fast path's chain gets a direct table: below it the trie is fast
// enough (mostly in cache) and 64 MiB would dwarf it. direct4MaxLong is the
// most prefixes longer than /24 that one /24 may hold in a direct table's
// short list before its lookups fall back to the trie. Tests lower both.
var (
	direct4MinPrefixes = 1 << 17
	direct4MaxLong     = 8
)

// lookup4 is t.trie.Lookup(dst) for the IPv4 address d == uint4(dst),
// through the direct table when the table has one.
func (t *table) lookup4(d uint32, dst netip.Addr) (slot, bool) {
	dt := t.dir
	if dt == nil {
		return t.trie.Lookup(dst)
	}
	e := dt.tbl24[d>>8]
	if e < direct4Long {
		if e == 0 {
			return slot{}, false
		}
		return dt.slots[e-1], true
	}
	if e == direct4Fallback {
		return t.trie.Lookup(dst)
	}
	g := dt.long[e-direct4Long:]
	low := d & 0xff
	k := int(g[1])
	for j := 2; j < 2+2*k; j += 2 {
		if w := g[j]; low&(w>>8) == w&0xff {
			return dt.slots[g[j+1]-1], true
		}
	}
	if g[0] == 0 {
		return slot{}, false
	}
	return dt.slots[g[0]-1], true
}

// longPrefix4 is a prefix longer than /24 while a direct table is built.
type longPrefix4 struct {
	addr uint32
	bits int
	id   uint32
}

// prefixSlot is a prefix of the trie and its slot while a direct table is
// built; key is the prefix's address shifted left by 6, plus its length,
// so that keys sort in CIDR order (address, then length).
type prefixSlot struct {
	key uint64
	s   slot
}

// buildDirect4 returns the direct table of an IPv4 trie, nil if the trie
// is too big for its encoding.
//
// It sorts the prefixes in CIDR order (address, then length), so that the
// prefixes covering a /24 form a stack: every entry of tbl24 is written
// once, with the innermost open prefix, instead of once per covering
// prefix.
func buildDirect4(trie *bart.Table[slot]) *direct4 {
	n := trie.Size4()
	if n >= int(direct4Long-1) {
		return nil
	}
	ps := sortedPrefixes4(trie, n)
	dt := &direct4{tbl24: make([]uint32, 1<<24), slots: make([]slot, len(ps))}
	type open struct{ end, val uint32 }
	var stack []open
	var longs []longPrefix4
	pos := uint32(0)
	// fill sets tbl24 from pos to end to the value of the innermost open
	// prefix (tbl24 is zero already where none is open).
	fill := func(end uint32) {
		if len(stack) > 0 && pos < end {
			fillUint32(dt.tbl24[pos:end], stack[len(stack)-1].val)
		}
		pos = max(pos, end)
	}
	for i, p := range ps {
		dt.slots[i] = p.s
		id := uint32(i + 1)
		a, bits := uint32(p.key>>6), int(p.key&63)
		if bits > 24 {
			longs = append(longs, longPrefix4{addr: a, bits: bits, id: id})
			continue
		}
		start := a >> 8
		for len(stack) > 0 && stack[len(stack)-1].end <= start {
			fill(stack[len(stack)-1].end)
			stack = stack[:len(stack)-1]
		}
		fill(start)
		stack = append(stack, open{end: start + 1<<(24-bits), val: id})
	}
	for len(stack) > 0 {
		fill(stack[len(stack)-1].end)
		stack = stack[:len(stack)-1]
	}
	if !dt.addLong(longs) {
		return nil
	}
	return dt
}

// fillUint32 sets every element of s to v: a loop for short ranges,
// doubling copies (memmove) for long ones.
func fillUint32(s []uint32, v uint32) {
	if len(s) < 64 {
		for i := range s {
			s[i] = v
		}
		return
	}
	s[0] = v
	for k := 1; k < len(s); k *= 2 {
		copy(s[k:], s[:k])
	}
}

// sortedPrefixes4 returns the n IPv4 prefixes of a trie and their slots
// in CIDR order: counted into buckets by the top 16 bits of the address,
// each bucket then sorted (bart's own sorted walk takes longer).
func sortedPrefixes4(trie *bart.Table[slot], n int) []prefixSlot {
	ps := make([]prefixSlot, 0, n)
	for p, s := range trie.All4() {
		ps = append(ps, prefixSlot{key: uint64(uint4(p.Addr()))<<6 | uint64(p.Bits()), s: s})
	}
	const shift = 6 + 16
	ends := make([]uint32, 1<<16)
	for _, p := range ps {
		ends[p.key>>shift]++
	}
	sum := uint32(0)
	for b, c := range ends {
		ends[b] = sum
		sum += c
	}
	// ends[b] is the start of bucket b until the scatter moves it to its
	// end.
	out := make([]prefixSlot, len(ps))
	for _, p := range ps {
		b := p.key >> shift
		out[ends[b]] = p
		ends[b]++
	}
	start := uint32(0)
	for _, end := range ends {
		bucket := out[start:end]
		start = end
		if len(bucket) > 16 {
			slices.SortFunc(bucket, func(a, b prefixSlot) int { return cmp.Compare(a.key, b.key) })
			continue
		}
		for i := 1; i < len(bucket); i++ {
			for j := i; j > 0 && bucket[j-1].key > bucket[j].key; j-- {
				bucket[j-1], bucket[j] = bucket[j], bucket[j-1]
			}
		}
	}
	return out
}

// addLong points the /24s holding the prefixes longer than /24 (in CIDR
// order, so those of one /24 are adjacent) to their groups. It reports
// false if long outgrows its encoding.
func (dt *direct4) addLong(longs []longPrefix4) bool {
	groups := 0
	for i := range longs {
		if i == 0 || longs[i].addr>>8 != longs[i-1].addr>>8 {
			groups++
		}
	}
	dt.long = make([]uint32, 0, 2*groups+2*len(longs))
	for len(longs) > 0 {
		blk := longs[0].addr >> 8
		k := 1
		for k < len(longs) && longs[k].addr>>8 == blk {
			k++
		}
		group := longs[:k]
		longs = longs[k:]
		if k > direct4MaxLong {
			dt.tbl24[blk] = direct4Fallback
			continue
		}
		off := uint32(len(dt.long))
		if off >= direct4Fallback-direct4Long-uint32(2+2*k) {
			return false
		}
		// Longest first (a stable insertion sort: k is small).
		for i := 1; i < k; i++ {
			for j := i; j > 0 && group[j-1].bits < group[j].bits; j-- {
				group[j-1], group[j] = group[j], group[j-1]
			}
		}
		dt.long = append(dt.long, dt.tbl24[blk], uint32(k))
		for _, l := range group {
			mask := uint32(0xff) << (32 - l.bits) & 0xff
			dt.long = append(dt.long, mask<<8|l.addr&mask, l.id)
		}
		dt.tbl24[blk] = direct4Long + off
	}
	return true
}
