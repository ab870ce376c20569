package direct

import (
	"cmp"
	"encoding/binary"
	"iter"
	"net/netip"
	"slices"

	"github.com/gaissmai/bart"
)

// Table4 is a direct-indexed copy of a big IPv4 table's trie for the
// output fast path, in the manner of DIR-24-8 with blocks of /22: one read
// of tbl at the destination's /22 block answers which prefix of at most 22
// bits is the longest match, where walking the trie of a million prefixes
// costs several cache and TLB misses. A block that holds longer prefixes
// points to a short list of them instead, tried longest first; a block
// holding more than direct4MaxLong of them falls back to the trie. Memory
// is tbl's 16 MiB plus a few words per prefix (/22 rather than /24 blocks:
// a quarter of the memory, and less allocation to add to the garbage
// collector's work while a model is frozen, for lookups that measured the
// same). It answers exactly what the trie's Lookup answers: the value of
// the longest prefix covering the address.
type Table4[V any] struct {
	// tbl is indexed by the destination's top Bits bits, its
	// block: 0 when no prefix covers the block and none lies inside it;
	// 1 + the index in vals of the longest prefix of at most Bits
	// bits covering it; or direct4Long plus the offset in long of the
	// block's group; or direct4Fallback.
	tbl []uint32
	// vals are the trie's values, one per prefix, in CIDR order.
	vals []V
	// long holds the groups of blocks with longer prefixes: at the group's
	// offset, the entry the block would have without them (0 or 1 + a
	// vals index), their number k, then k pairs, longest prefix first:
	// the prefix's address within the block with the mask of its bits
	// within the block shifted left by 16, and 1 + its vals index.
	long []uint32
}

const (
	// Bits is the length of a block's prefix; direct4Low the bits
	// of an address within its block.
	Bits                   = 22
	direct4Low             = 32 - Bits
	direct4LowMask  uint32 = 1<<direct4Low - 1
	direct4Long     uint32 = 1 << 31
	direct4Fallback uint32 = ^uint32(0)
)

// MinPrefixes is the number of prefixes from which a table of the fast
// path's chain gets a direct table: below it the trie is fast enough
// (mostly in cache) and 16 MiB would dwarf it. MaxLong is the most
// prefixes longer than a block that one block may hold in a direct table's
// short list before its lookups fall back to the trie. Tests lower both.
var (
	MinPrefixes = 1 << 17
	MaxLong     = 8
)

// Lookup returns the value of the longest prefix covering the IPv4
// address d (as a number), and ok false if none covers it; with trie set
// the table does not know (the address's block holds more than MaxLong
// longer prefixes) and the trie must answer.
func (dt *Table4[V]) Lookup(d uint32) (v V, ok, trie bool) {
	e := dt.tbl[d>>direct4Low]
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
	low := d & direct4LowMask
	k := int(g[1])
	for j := 2; j < 2+2*k; j += 2 {
		if w := g[j]; low&(w>>16) == w&0xffff {
			return dt.vals[g[j+1]-1], true, false
		}
	}
	if g[0] == 0 {
		return v, false, false
	}
	return dt.vals[g[0]-1], true, false
}

// longPrefix4 is a prefix longer than a block while a direct table is
// built.
type longPrefix4 struct {
	addr uint32
	id   uint32
	bits uint8
}

// Prefix4 is an IPv4 prefix of the trie and its value while a direct
// table is built; key is the prefix's address shifted left by 6, plus its
// length, so that keys sort in CIDR order (address, then length).
type Prefix4[V any] struct {
	key uint64
	v   V
}

// Build4 returns the direct table of the IPv4 prefixes of a trie and
// their values, given in any order; nil if there are too many for its
// encoding or a prefix is listed twice.
//
// It sorts the prefixes in CIDR order (address, then length), so that the
// prefixes covering a block form a stack: every entry of tbl is written
// once, with the innermost open prefix, instead of once per covering
// prefix.
func Build4[V any](ps []Prefix4[V]) *Table4[V] {
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

// sweepDirect fills a direct table's tbl and vals from prefixes sorted in
// CIDR order, keyed as Prefix4 is: the address's top Bits bits
// index tbl. It returns the prefixes longer than Bits, in CIDR
// order, for the blocks' short lists. Shared by IPv4 and by IPv6, whose
// keys are the 32 bits after its region.
func sweepDirect[V any](ps []Prefix4[V]) (*Table4[V], []longPrefix4) {
	dt := &Table4[V]{tbl: make([]uint32, 1<<Bits), vals: make([]V, len(ps))}
	type open struct{ end, val uint32 }
	var stack []open
	nlong := 0
	for _, p := range ps {
		if p.key&63 > Bits {
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
		dt.vals[i] = p.v
		id := uint32(i + 1)
		a, bits := uint32(p.key>>6), int(p.key&63)
		if bits > Bits {
			longs = append(longs, longPrefix4{addr: a, id: id, bits: uint8(bits)})
			continue
		}
		start := a >> direct4Low
		for len(stack) > 0 && stack[len(stack)-1].end <= start {
			fill(stack[len(stack)-1].end)
			stack = stack[:len(stack)-1]
		}
		fill(start)
		stack = append(stack, open{end: start + 1<<(Bits-bits), val: id})
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

// key4 is the Prefix4 key of an IPv4 prefix.
func key4(p netip.Prefix) uint64 {
	b := p.Addr().As4()
	return uint64(binary.BigEndian.Uint32(b[:]))<<6 | uint64(p.Bits())
}

// FromTrie4 returns the IPv4 prefixes of a trie and their values, in the
// trie's order.
func FromTrie4[V any](trie *bart.Table[V]) []Prefix4[V] {
	ps := make([]Prefix4[V], 0, trie.Size4())
	for p, v := range trie.All4() {
		ps = append(ps, NewPrefix4(p, v))
	}
	return ps
}

// NewPrefix4 is an IPv4 prefix and its value as a direct table sorts them.
func NewPrefix4[V any](p netip.Prefix, v V) Prefix4[V] { return Prefix4[V]{key: key4(p), v: v} }

// Values returns the table's values, one per prefix, in CIDR order
// (address, then length): those of the trie it was built from.
func (dt *Table4[V]) Values() []V { return dt.vals }

// Kinds counts the blocks of the table answered by a value, by a group of
// longer prefixes, and by the trie.
func (dt *Table4[V]) Kinds() (direct, long, fallback int) { return kinds(dt.tbl) }

func kinds(tbl []uint32) (direct, long, fallback int) {
	for _, e := range tbl {
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

// sortPrefixes4 sorts prefixes in CIDR order: counted into buckets by the
// top 16 bits of the address, each bucket then sorted (bart's own sorted
// walk takes longer).
func sortPrefixes4[V any](ps []Prefix4[V]) []Prefix4[V] {
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
	out := make([]Prefix4[V], len(ps))
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
			slices.SortFunc(bucket, func(a, b Prefix4[V]) int { return cmp.Compare(a.key, b.key) })
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
func (dt *Table4[V]) addLong(longs []longPrefix4) bool {
	dt.long = make([]uint32, 0, 2*countBlocks(longs)+2*len(longs))
	for blk, group := range blockRuns(longs) {
		k := len(group)
		if k > MaxLong {
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
