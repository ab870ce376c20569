package fib

import (
	"cmp"
	"iter"
	"net/netip"
	"slices"

	"github.com/gaissmai/bart"
)

// direct4 is a direct-indexed copy of a big IPv4 table's trie for the
// output fast path, in the manner of DIR-24-8 with blocks of /22: one read
// of tbl at the destination's /22 block answers which prefix of at most 22
// bits is the longest match, where walking the trie of a million prefixes
// costs several cache and TLB misses. A block that holds longer prefixes
// points to a short list of them instead, tried longest first; a block
// holding more than direct4MaxLong of them falls back to the trie. Memory
// is tbl's 16 MiB plus a few words per prefix (/22 rather than /24 blocks:
// a quarter of the memory, and less allocation to add to the garbage
// collector's work while a model is frozen, for lookups that measured the
// same). It answers exactly what the trie's Lookup answers: the slot of
// the longest prefix covering the address.
type direct4 struct {
	// tbl is indexed by the destination's top direct4Bits bits, its
	// block: 0 when no prefix covers the block and none lies inside it;
	// 1 + the index in slots of the longest prefix of at most direct4Bits
	// bits covering it; or direct4Long plus the offset in long of the
	// block's group; or direct4Fallback.
	tbl []uint32
	// slots are the trie's slots, one per prefix.
	slots []slot
	// long holds the groups of blocks with longer prefixes: at the group's
	// offset, the entry the block would have without them (0 or 1 + a
	// slots index), their number k, then k pairs, longest prefix first:
	// the prefix's address within the block with the mask of its bits
	// within the block shifted left by 16, and 1 + its slots index.
	long []uint32
}

const (
	// direct4Bits is the length of a block's prefix; direct4Low the bits
	// of an address within its block.
	direct4Bits            = 22
	direct4Low             = 32 - direct4Bits
	direct4LowMask  uint32 = 1<<direct4Low - 1
	direct4Long     uint32 = 1 << 31
	direct4Fallback uint32 = ^uint32(0)
)

// direct4MinPrefixes is the number of IPv4 prefixes from which a table of
// the fast path's chain gets a direct table: below it the trie is fast
// enough (mostly in cache) and 16 MiB would dwarf it. direct4MaxLong is the
// most prefixes longer than a block that one block may hold in a direct
// table's short list before its lookups fall back to the trie. Tests lower
// both.
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
	e := dt.tbl[d>>direct4Low]
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
	low := d & direct4LowMask
	k := int(g[1])
	for j := 2; j < 2+2*k; j += 2 {
		if w := g[j]; low&(w>>16) == w&0xffff {
			return dt.slots[g[j+1]-1], true
		}
	}
	if g[0] == 0 {
		return slot{}, false
	}
	return dt.slots[g[0]-1], true
}

// longPrefix4 is a prefix longer than a block while a direct table is
// built.
type longPrefix4 struct {
	addr uint32
	id   uint32
	bits uint8
}

// prefixSlot is a prefix of the trie and its slot while a direct table is
// built; key is the prefix's address shifted left by 6, plus its length,
// so that keys sort in CIDR order (address, then length).
type prefixSlot struct {
	key uint64
	s   slot
}

// buildDirect4 returns the direct table of the IPv4 prefixes of a trie
// and their slots, given in any order; nil if there are too many for its
// encoding or a prefix is listed twice.
//
// It sorts the prefixes in CIDR order (address, then length), so that the
// prefixes covering a block form a stack: every entry of tbl is written
// once, with the innermost open prefix, instead of once per covering
// prefix.
func buildDirect4(ps []prefixSlot) *direct4 {
	if len(ps) >= int(direct4Long-1) {
		return nil
	}
	ps = sortPrefixes4(ps)
	for i := 1; i < len(ps); i++ {
		if ps[i-1].key >= ps[i].key {
			return nil
		}
	}
	dt, longs := sweepDirect(ps)
	if !dt.addLong(longs) {
		return nil
	}
	return dt
}

// sweepDirect fills a direct table's tbl and slots from prefixes sorted in
// CIDR order, keyed as prefixSlot is: the address's top direct4Bits bits
// index tbl. It returns the prefixes longer than direct4Bits, in CIDR
// order, for the blocks' short lists. Shared by IPv4 and by IPv6, whose
// keys are the 32 bits after its region.
func sweepDirect(ps []prefixSlot) (*direct4, []longPrefix4) {
	dt := &direct4{tbl: make([]uint32, 1<<direct4Bits), slots: make([]slot, len(ps))}
	type open struct{ end, val uint32 }
	var stack []open
	nlong := 0
	for _, p := range ps {
		if p.key&63 > direct4Bits {
			nlong++
		}
	}
	longs := make([]longPrefix4, 0, nlong)
	pos := uint32(0)
	// fill sets tbl from pos to end to the value of the innermost open
	// prefix (tbl is zero already where none is open).
	fill := func(end uint32) {
		if len(stack) > 0 && pos < end {
			fillUint32(dt.tbl[pos:end], stack[len(stack)-1].val)
		}
		pos = max(pos, end)
	}
	for i, p := range ps {
		dt.slots[i] = p.s
		id := uint32(i + 1)
		a, bits := uint32(p.key>>6), int(p.key&63)
		if bits > direct4Bits {
			longs = append(longs, longPrefix4{addr: a, id: id, bits: uint8(bits)})
			continue
		}
		start := a >> direct4Low
		for len(stack) > 0 && stack[len(stack)-1].end <= start {
			fill(stack[len(stack)-1].end)
			stack = stack[:len(stack)-1]
		}
		fill(start)
		stack = append(stack, open{end: start + 1<<(direct4Bits-bits), val: id})
	}
	for len(stack) > 0 {
		fill(stack[len(stack)-1].end)
		stack = stack[:len(stack)-1]
	}
	return dt, longs
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

// key4 is the prefixSlot key of an IPv4 prefix.
func key4(p netip.Prefix) uint64 {
	return uint64(uint4(p.Addr()))<<6 | uint64(p.Bits())
}

// trieSlots4 returns the IPv4 prefixes of a trie and their slots, in the
// trie's order.
func trieSlots4(trie *bart.Table[slot]) []prefixSlot {
	ps := make([]prefixSlot, 0, trie.Size4())
	for p, s := range trie.All4() {
		ps = append(ps, prefixSlot{key: key4(p), s: s})
	}
	return ps
}

// ownedSlots returns the prefixes of table t and their slots from
// index.owned, in route order, each made by mk; nil if they are not as many
// as n, the number of the trie's prefixes of that family. IPv4 and IPv6
// direct tables are built from it (newPrefixSlot4, newPrefixSlot6).
func ownedSlots[P any](ix *index, t *table, n int, mk func(netip.Prefix, slot) P) []P {
	if ix.owned == nil {
		return nil
	}
	ps := make([]P, 0, n)
	var lastKey tableKey
	var last *table
	for i, s := range ix.owned {
		if s.idx != uint32(i) {
			continue
		}
		r := &ix.routes[i]
		if k := (tableKey{r.Family, r.Table}); last == nil || k != lastKey {
			last, lastKey = ix.tableOf(r), k
		}
		if last == t {
			ps = append(ps, mk(r.Dst, s))
		}
	}
	if len(ps) != n {
		return nil
	}
	return ps
}

// newPrefixSlot4 is an IPv4 prefix and its slot as the direct table sorts them.
func newPrefixSlot4(p netip.Prefix, s slot) prefixSlot { return prefixSlot{key: key4(p), s: s} }

// sortPrefixes4 sorts prefixes in CIDR order: counted into buckets by the
// top 16 bits of the address, each bucket then sorted (bart's own sorted
// walk takes longer).
func sortPrefixes4(ps []prefixSlot) []prefixSlot {
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

// countBlocks counts the blocks that longs (sorted by address) fall in.
func countBlocks(longs []longPrefix4) int {
	n := 0
	for i := range longs {
		if i == 0 || longs[i].addr>>direct4Low != longs[i-1].addr>>direct4Low {
			n++
		}
	}
	return n
}

// blockRuns yields each block that longs (sorted by address) fall in, with
// the run of longs in it.
func blockRuns(longs []longPrefix4) iter.Seq2[uint32, []longPrefix4] {
	return func(yield func(uint32, []longPrefix4) bool) {
		for len(longs) > 0 {
			blk := longs[0].addr >> direct4Low
			k := 1
			for k < len(longs) && longs[k].addr>>direct4Low == blk {
				k++
			}
			if !yield(blk, longs[:k]) {
				return
			}
			longs = longs[k:]
		}
	}
}

// addLong points the blocks holding the prefixes longer than a block (in
// CIDR order, so those of one block are adjacent) to their groups. It
// reports false if long outgrows its encoding.
func (dt *direct4) addLong(longs []longPrefix4) bool {
	dt.long = make([]uint32, 0, 2*countBlocks(longs)+2*len(longs))
	for blk, group := range blockRuns(longs) {
		k := len(group)
		if k > direct4MaxLong {
			dt.tbl[blk] = direct4Fallback
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
		dt.long = append(dt.long, dt.tbl[blk], uint32(k))
		for _, l := range group {
			mask := direct4LowMask << (32 - l.bits) & direct4LowMask
			dt.long = append(dt.long, mask<<16|l.addr&mask, l.id)
		}
		dt.tbl[blk] = direct4Long + off
	}
	return true
}
