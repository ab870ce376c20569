package fib

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/gaissmai/bart"
)

// node holds the routes of one prefix in one table (a leaf of the kernel's
// trie), ordered the way the kernel tries them.
type node struct {
	prefix  netip.Prefix
	entries []entry
	// one holds the entry of a prefix with a single route, so that the
	// common case reads no memory beyond the node.
	one [1]entry
}

// entry is a route with the facts a lookup tests resolved in advance, so
// the hot path touches the Route itself only for the route it returns.
type entry struct {
	route *Route
	// dev is the device of the first next hop (nil if none or unknown).
	dev *device
	// gw and prefSrc are the first next hop's gateway and the route's
	// preferred source.
	gw      netip.Addr
	prefSrc netip.Addr
	metric  uint32
	typ     RouteType
	tos     uint8
	scope   Scope
	// single is set for a route with exactly one next hop; dead and
	// linkdown are that next hop's flags.
	single   bool
	hasNH    bool
	dead     bool
	linkdown bool
}

// device is a link with what lookups need of it resolved: its effective
// IPv4 sysctls and its addresses of each family, in the kernel's order.
type device struct {
	link  *Link
	conf  DevConf
	addr4 []*Address
	addr6 []*Address
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
	devs   map[string]*device
	// byIndex lists the devices in index order, the kernel's device order.
	byIndex []*device
	// lo is the loopback device.
	lo *device
	// main4 is IPv4 table main (holding local too while merged).
	main4 *table
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
		devs:   make(map[string]*device, len(m.Links)),
	}
	for i := range m.Links {
		l := &m.Links[i]
		d := &device{link: l, conf: m.conf(l.Name)}
		ix.devs[l.Name] = d
		ix.byIndex = append(ix.byIndex, d)
		if l.Kind == KindLoopback && ix.lo == nil {
			ix.lo = d
		}
	}
	if ix.lo == nil {
		ix.lo = &device{link: &Link{Name: "lo", Kind: KindLoopback, Index: 1}}
	}
	slices.SortStableFunc(ix.byIndex, func(a, b *device) int { return cmp.Compare(a.link.Index, b.link.Index) })
	for i := range m.Addrs {
		a := &m.Addrs[i]
		d := ix.devs[a.Link]
		if d == nil {
			continue
		}
		if a.Prefix.Addr().Is4() {
			d.addr4 = append(d.addr4, a)
		} else {
			d.addr6 = append(d.addr6, a)
		}
	}
	for i := range m.Rules {
		r := &m.Rules[i]
		ix.rules[r.Family] = append(ix.rules[r.Family], r)
	}
	for _, rules := range ix.rules {
		slices.SortStableFunc(rules, func(a, b *Rule) int { return cmp.Compare(a.Priority, b.Priority) })
	}
	ix.merged = !m.Unmerged && onlyDefaultRules(ix.rules[V4])

	// Nodes come from one slab: a model of a million routes is built with
	// a handful of allocations.
	slab := make([]node, 0, len(m.Routes))
	var multi []*node
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
		e := ix.entryOf(r)
		t.trie.Modify(r.Dst, func(n *node, ok bool) (*node, bool) {
			if !ok {
				slab = append(slab, node{prefix: r.Dst})
				n = &slab[len(slab)-1]
				n.one[0] = e
				n.entries = n.one[:]
				return n, false
			}
			if len(n.entries) == 1 {
				multi = append(multi, n)
			}
			n.entries = append(n.entries, e)
			return n, false
		})
	}
	for _, n := range multi {
		slices.SortStableFunc(n.entries, func(a, b entry) int { return aliasOrder(a.route, b.route) })
	}
	ix.main4 = ix.table(V4, TableMain)
	return ix
}

func (ix *index) entryOf(r *Route) entry {
	e := entry{route: r, typ: r.Type, tos: r.TOS, scope: r.Scope, metric: r.Metric, prefSrc: r.PrefSrc, single: len(r.NextHops) == 1}
	if len(r.NextHops) > 0 {
		nh := &r.NextHops[0]
		e.hasNH = true
		e.dev = ix.devs[nh.Link]
		e.gw = nh.Gateway
		e.dead, e.linkdown = nh.Dead, nh.LinkDown
	}
	return e
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

// onlyDefaultRules reports whether the IPv4 rules are exactly the three a
// new namespace has: no selectors, lookup local, main and default at their
// priorities.
func onlyDefaultRules(rules []*Rule) bool {
	def := DefaultRules(V4)
	if len(rules) != len(def) {
		return false
	}
	for i, r := range rules {
		d := def[i]
		if r.Priority != d.Priority || r.Action != ActionLookup || r.Table != d.Table || !r.selectsAll() {
			return false
		}
	}
	return true
}

// selectsAll reports whether the rule has no selector: it matches every
// flow.
func (r *Rule) selectsAll() bool {
	fullUIDs := r.UIDs == nil || (r.UIDs.Start == 0 && r.UIDs.End == ^uint32(0))
	return !r.Not && !r.Src.IsValid() && !r.Dst.IsValid() && r.IIF == "" && r.OIF == "" &&
		r.Mark == 0 && r.Mask == 0 && r.TOS == 0 && !r.L3MDev && r.IPProto == 0 &&
		r.SPort == (PortRange{}) && r.DPort == (PortRange{}) && fullUIDs &&
		r.SuppressPrefixLen < 0 && r.SuppressIfGroup < 0
}

// lookup returns the node of the longest prefix in the table that covers
// dst; shorter walks to the less specific ones.
func (t *table) lookup(dst netip.Addr) *node {
	n, _ := t.trie.Lookup(dst)
	return n
}

// shorter returns the node of the next shorter prefix that covers n, nil
// if there is none. Lookups only need it when no route of the longest
// prefix was usable, so it is searched for then rather than stored.
func (t *table) shorter(n *node) *node {
	p := n.prefix
	if p.Bits() == 0 {
		return nil
	}
	_, up, ok := t.trie.LookupPrefixLPM(netip.PrefixFrom(p.Addr(), p.Bits()-1).Masked())
	if !ok {
		return nil
	}
	return up
}

func (ix *index) table(f Family, id TableID) *table {
	return ix.tables[tableKey{f, id}]
}

// dev returns the device of a name; nil if there is none.
func (ix *index) dev(name string) *device { return ix.devs[name] }
