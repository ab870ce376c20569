package fib

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/gaissmai/bart"
)

// node holds the routes of one prefix in one table (a leaf of the kernel's
// trie), ordered the way the kernel tries them, and a link to the node of
// the next shorter prefix that covers it, so a lookup can fall back to a
// less specific route without searching again.
type node struct {
	prefix netip.Prefix
	routes []*Route
	parent *node
}

// table is one routing table of one family: a longest-prefix-match trie of
// nodes.
type table struct {
	id   TableID
	trie bart.Table[*node]
}

type tableKey struct {
	family Family
	id     TableID
}

// index is the lookup structure derived from a Model. It is rebuilt after
// the model changes.
type index struct {
	tables map[tableKey]*table
	// merged is the kernel's "no custom rules" state for IPv4: the local
	// table's routes live in main's trie and rules are not consulted.
	merged bool
	rules  map[Family][]*Rule
	links  map[string]*Link
	// byIndex lists the links in index order, the kernel's device order.
	byIndex []*Link
	addrs   map[Family]map[string][]*Address
	// customLocal is set once a route of type local was added by a user.
	customLocal bool
}

// Freeze builds the lookup structure now. Lookups build it on first use;
// call Freeze before sharing a model between goroutines. Any change to the
// model's fields afterwards must be followed by Invalidate.
func (m *Model) Freeze() { m.index() }

// Invalidate drops the lookup structure after the model's fields were
// changed directly.
func (m *Model) Invalidate() { m.idx = nil }

func (m *Model) index() *index {
	if m.idx == nil {
		m.idx = buildIndex(m)
	}
	return m.idx
}

func buildIndex(m *Model) *index {
	ix := &index{
		tables: make(map[tableKey]*table),
		rules:  make(map[Family][]*Rule),
		links:  make(map[string]*Link, len(m.Links)),
		addrs:  map[Family]map[string][]*Address{V4: {}, V6: {}},
	}
	for i := range m.Links {
		l := &m.Links[i]
		ix.links[l.Name] = l
		ix.byIndex = append(ix.byIndex, l)
	}
	slices.SortStableFunc(ix.byIndex, func(a, b *Link) int { return cmp.Compare(a.Index, b.Index) })
	for i := range m.Addrs {
		a := &m.Addrs[i]
		f := FamilyOf(a.Prefix.Addr())
		ix.addrs[f][a.Link] = append(ix.addrs[f][a.Link], a)
	}
	for i := range m.Rules {
		r := &m.Rules[i]
		ix.rules[r.Family] = append(ix.rules[r.Family], r)
	}
	for _, rules := range ix.rules {
		slices.SortStableFunc(rules, func(a, b *Rule) int { return cmp.Compare(a.Priority, b.Priority) })
	}
	ix.merged = !m.Unmerged && onlyDefaultRules(ix.rules[V4])

	for i := range m.Routes {
		r := &m.Routes[i]
		if r.Type == TypeLocal && r.Protocol != "kernel" {
			ix.customLocal = true
		}
		key := tableKey{r.Family, r.Table}
		if ix.merged && key == (tableKey{V4, TableLocal}) {
			key.id = TableMain
		}
		t := ix.tables[key]
		if t == nil {
			t = &table{id: key.id}
			ix.tables[key] = t
		}
		n, ok := t.trie.Get(r.Dst)
		if !ok {
			n = &node{prefix: r.Dst}
			t.trie.Insert(r.Dst, n)
		}
		n.routes = append(n.routes, r)
	}
	for _, t := range ix.tables {
		for p, n := range t.trie.All() {
			slices.SortStableFunc(n.routes, aliasOrder)
			if p.Bits() > 0 {
				shorter := netip.PrefixFrom(p.Addr(), p.Bits()-1).Masked()
				if _, parent, ok := t.trie.LookupPrefixLPM(shorter); ok {
					n.parent = parent
				}
			}
		}
	}
	return ix
}

// aliasOrder is the order of routes of one prefix in a kernel trie leaf:
// higher table id first (local before main when merged), then higher TOS
// (a TOS-specific route before the catch-all), then lower metric. Ties keep
// the model's (dump) order.
func aliasOrder(a, b *Route) int {
	if c := cmp.Compare(b.Table, a.Table); c != 0 {
		return c
	}
	if c := cmp.Compare(b.TOS, a.TOS); c != 0 {
		return c
	}
	return cmp.Compare(a.Metric, b.Metric)
}

func onlyDefaultRules(rules []*Rule) bool {
	def := DefaultRules(V4)
	if len(rules) != len(def) {
		return false
	}
	for i, r := range rules {
		if *r != def[i] {
			return false
		}
	}
	return true
}

// lookup returns the node of the longest prefix in the table that covers
// dst; its parent chain lists the shorter ones.
func (t *table) lookup(dst netip.Addr) *node {
	n, _ := t.trie.Lookup(dst)
	return n
}

func (ix *index) table(f Family, id TableID) *table {
	return ix.tables[tableKey{f, id}]
}
