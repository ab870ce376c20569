package fast

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/fibguard/fibguard/fib/internal/direct"
)

// randomPrefix returns a prefix of the family, crowded into a few /8s (or
// /24s of IPv6) so that chains share prefixes and direct tables have
// blocks with longer prefixes.
func randomPrefix(r *rand.Rand, v6 bool) netip.Prefix {
	if v6 {
		var b [16]byte
		b[0], b[1], b[2] = 0x20, 0x01, byte(r.IntN(3))
		for i := 3; i < 16; i++ {
			b[i] = byte(r.IntN(4))
		}
		return netip.PrefixFrom(netip.AddrFrom16(b), []int{0, 16, 20, 24, 30, 40, 48, 64, 128}[r.IntN(9)]).Masked()
	}
	b := [4]byte{10 + byte(r.IntN(3)), byte(r.IntN(4)), byte(r.IntN(4)), byte(r.IntN(256))}
	return netip.PrefixFrom(netip.AddrFrom4(b), []int{0, 8, 16, 20, 22, 24, 26, 32}[r.IntN(8)]).Masked()
}

func randomAddr(r *rand.Rand, v6 bool) netip.Addr {
	p := randomPrefix(r, v6)
	b := p.Addr().AsSlice()
	for i := p.Bits() / 8; i < len(b); i++ {
		if r.IntN(2) == 0 {
			b[i] |= byte(r.IntN(256)) >> max(0, p.Bits()-8*i)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func uint4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// TestFindMatchesTries compares Find4 and Find6 with the chain's tries
// searched one by one, on random chains of up to four tables (some
// missing), each with a direct table or without.
func TestFindMatchesTries(t *testing.T) {
	oldMin, oldLong := direct.MinPrefixes, direct.MaxLong
	direct.MinPrefixes, direct.MaxLong = 0, 2
	t.Cleanup(func() { direct.MinPrefixes, direct.MaxLong = oldMin, oldLong })
	r := rand.New(rand.NewPCG(21, 22))
	for _, v6 := range []bool{false, true} {
		withDirect := 0
		for round := range 300 {
			chain := make([]*Table, 1+r.IntN(4))
			idx := uint32(0)
			for i := range chain {
				if r.IntN(5) == 0 {
					continue
				}
				tab := &Table{}
				for range r.IntN(60) {
					tab.Trie.Insert(randomPrefix(r, v6), NewSlot(idx, uint32(r.IntN(3))))
					idx++
				}
				if r.IntN(2) == 0 && tab.Trie.Size() > 0 {
					if v6 {
						tab.Dir6 = direct.Build6(direct.FromTrie6(&tab.Trie))
					} else {
						tab.Dir4 = direct.Build4(direct.FromTrie4(&tab.Trie))
					}
					if tab.Dir4 != nil || tab.Dir6 != nil {
						withDirect++
					}
				}
				chain[i] = tab
			}
			for range 300 {
				dst := randomAddr(r, v6)
				want, wantAt := Slot{}, -1
				for i, tab := range chain {
					if tab == nil {
						continue
					}
					if s, ok := tab.Trie.Lookup(dst); ok {
						want, wantAt = s, i
						break
					}
				}
				var got Slot
				var at int
				if v6 {
					got, at = Find6(chain, dst)
				} else {
					got, at = Find4(chain, uint4(dst), dst)
				}
				if got != want || at != wantAt {
					t.Fatalf("v6 %t round %d: %s: found %+v in table %d, the tries %+v in table %d", v6, round, dst, got, at, want, wantAt)
				}
			}
		}
		if withDirect < 100 {
			t.Errorf("v6 %t: only %d tables had a direct table", v6, withDirect)
		}
	}
}

// TestSlot checks the slot's encoding: route index, group mark and
// answer id are independent.
func TestSlot(t *testing.T) {
	for _, id := range []uint32{0, 1, 7, uint32(MaxShapes)} {
		s := NewSlot(42, id)
		if s.Idx != 42 || s.Shape() != id || s.Group() {
			t.Fatalf("NewSlot(42, %d) = %+v: idx %d shape %d group %t", id, s, s.Idx, s.Shape(), s.Group())
		}
		g := s.AsGroup()
		if g.Idx != 42 || g.Shape() != id || !g.Group() {
			t.Fatalf("NewSlot(42, %d).AsGroup() = %+v: idx %d shape %d group %t", id, g, g.Idx, g.Shape(), g.Group())
		}
	}
}

// TestShapes checks interning: equal answers get one id, ids count from
// 1, At returns what was added.
func TestShapes(t *testing.T) {
	var sh Shapes[[2]int]
	r := rand.New(rand.NewPCG(3, 4))
	seen := map[[2]int]uint32{}
	for range 2000 {
		v := [2]int{r.IntN(10), r.IntN(10)}
		id := sh.ID(v)
		if old, ok := seen[v]; ok && old != id {
			t.Fatalf("%v: id %d, earlier %d", v, id, old)
		}
		seen[v] = id
		if id == 0 || *sh.At(id) != v {
			t.Fatalf("%v: id %d holds %v", v, id, sh.At(id))
		}
	}
	if sh.Len() != len(seen) {
		t.Fatalf("%d answers, %d distinct", sh.Len(), len(seen))
	}
	sh.Seal()
	for v, id := range seen {
		if *sh.At(id) != v {
			t.Fatalf("after Seal: id %d holds %v, want %v", id, sh.At(id), v)
		}
	}
}
