package fast

import (
	"net/netip"

	"github.com/gaissmai/bart"

	"github.com/fibguard/fibguard/fib/internal/direct"
)

// Table is a routing table's trie of slots, with the direct table of a
// big table of the fast path (nil otherwise).
type Table struct {
	Trie bart.Table[Slot]
	Dir4 *direct.Table4[Slot]
	Dir6 *direct.Table6[Slot]
}

// Find4 searches the tables of a chain in order for the IPv4 address d ==
// dst as a number: the slot of the longest prefix covering it in the
// first table that has one, and that table's place in the chain; at is -1
// when none has. Nil tables are passed over. A table's direct table
// answers where it knows the answer, its trie elsewhere.
func Find4(chain []*Table, d uint32, dst netip.Addr) (s Slot, at int) {
	for i, t := range chain {
		if t == nil {
			continue
		}
		if t.Dir4 != nil {
			if v, ok, trie := t.Dir4.Lookup(d); !trie {
				if ok {
					return v, i
				}
				continue
			}
		}
		if v, ok := t.Trie.Lookup(dst); ok {
			return v, i
		}
	}
	return Slot{}, -1
}

// Find6 is Find4 for an IPv6 address.
func Find6(chain []*Table, dst netip.Addr) (s Slot, at int) {
	for i, t := range chain {
		if t == nil {
			continue
		}
		if t.Dir6 != nil {
			if v, ok, trie := t.Dir6.Lookup(dst); !trie {
				if ok {
					return v, i
				}
				continue
			}
		}
		if v, ok := t.Trie.Lookup(dst); ok {
			return v, i
		}
	}
	return Slot{}, -1
}
