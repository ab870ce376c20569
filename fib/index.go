package fib

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/gaissmai/bart"
)

// node holds the routes of one prefix in one table (a leaf of the kernel's
// trie), ordered the way the kernel tries them. It is 64 bytes, one cache
// line: a lookup that takes the first route reads nothing else of it.
type node struct {
	entries []entry
	// one holds the entry of a prefix with a single route, so that the
	// common case reads no memory beyond the node.
	one [1]entry
	_   [8]byte
}

// prefix returns the node's prefix (from its first route: the cold path).
func (n *node) prefix() netip.Prefix { return n.entries[0].route.Dst }

// entry is a route with the facts a lookup tests resolved in advance, so
// the hot path touches the Route itself only for the route it returns.
type entry struct {
	route *Route
	// dev is the device of the first next hop (nil if none or unknown).
	dev *device
	// gw4 and src4 are, for IPv4 routes, the first next hop's gateway and
	// the route's preferred source (0 when unset); IPv6 reads them from
	// the route.
	gw4    uint32
	src4   uint32
	metric uint32
	typ    RouteType
	tos    uint8
	scope  Scope
	flags  entryFlags
}

// entryFlags are facts about an entry's next hops.
type entryFlags uint8

const (
	// flagSingle: exactly one next hop; flagDead and flagLinkdown are its
	// flags.
	flagSingle entryFlags = 1 << iota
	flagHasNH
	flagDead
	flagLinkdown
	// flagGwLocal: the gateway is an address of this host (it resolves to
	// a local route), so the kernel gives the next hop host scope and does
	// not use it as a gateway.
	flagGwLocal
)

func (e *entry) has(f entryFlags) bool { return e.flags&f != 0 }

// gateway returns the first next hop's gateway.
func (e *entry) gateway() netip.Addr {
	if e.route.Family == V4 {
		return addr4(e.gw4)
	}
	if len(e.route.NextHops) == 0 {
		return netip.Addr{}
	}
	return e.route.NextHops[0].Gateway
}

// prefSrc returns the route's preferred source.
func (e *entry) prefSrc() netip.Addr {
	if e.route.Family == V4 {
		return addr4(e.src4)
	}
	return e.route.PrefSrc
}

func addr4(v uint32) netip.Addr {
	if v == 0 {
		return netip.Addr{}
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func uint4(a netip.Addr) uint32 {
	if !a.Is4() {
		return 0
	}
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// device is a link with what lookups need of it resolved: its effective
// IPv4 sysctls and its addresses of each family, in the kernel's order.
type device struct {
	link  *Link
	conf  DevConf
	addr4 []*Address
	addr6 []*Address
	// label6 and scope6 are the source-selection label and scope of each
	// address in addr6.
	label6 []int
	scope6 []int
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
	// rules holds each family's rules in priority order, and ruleTables
	// the table each lookup rule names (nil if it does not exist); index
	// with fam.
	rules      [2][]*Rule
	ruleTables [2][]*table
	devs       map[string]*device
	// byIndex lists the devices in index order, the kernel's device order.
	byIndex []*device
	// lo is the loopback device.
	lo *device
	// main4 is IPv4 table main (holding local too while merged) and
	// default4 table default: the merged lookup's two tables.
	main4, default4 *table
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
			d.label6 = append(d.label6, label6(a.Prefix.Addr()))
			d.scope6 = append(d.scope6, addrScope6(a.Prefix.Addr()))
		}
	}
	for i := range m.Rules {
		r := &m.Rules[i]
		ix.rules[fam(r.Family)] = append(ix.rules[fam(r.Family)], r)
	}
	for _, rules := range ix.rules {
		slices.SortStableFunc(rules, func(a, b *Rule) int { return cmp.Compare(a.Priority, b.Priority) })
	}
	ix.merged = !m.Unmerged && onlyDefaultRules(ix.rules[fam(V4)])

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
				slab = append(slab, node{})
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
	for f, rules := range ix.rules {
		for _, r := range rules {
			ix.ruleTables[f] = append(ix.ruleTables[f], ix.tables[tableKey{r.Family, r.Table}])
		}
	}
	ix.resolveGateways4()
	ix.main4 = ix.table(V4, TableMain)
	ix.default4 = ix.table(V4, TableDefault)
	return ix
}

func (ix *index) entryOf(r *Route) entry {
	e := entry{route: r, typ: r.Type, tos: r.TOS, scope: r.Scope, metric: r.Metric, src4: uint4(r.PrefSrc)}
	if len(r.NextHops) == 1 {
		e.flags |= flagSingle
	}
	if len(r.NextHops) > 0 {
		nh := &r.NextHops[0]
		e.flags |= flagHasNH
		e.dev = ix.devs[nh.Link]
		e.gw4 = uint4(nh.Gateway)
		if nh.Dead {
			e.flags |= flagDead
		}
		if nh.LinkDown {
			e.flags |= flagLinkdown
		}
	}
	return e
}

// resolveGateways4 marks IPv4 gateway routes whose gateway is a local
// address. The kernel resolves a gateway when the route is added
// (fib_check_nh_v4_gw): in the route's table, else in main, among routes of
// a narrower scope than the route's; the scope of the route it finds
// becomes the next hop's, and only a link-scope next hop is used as a
// gateway (rt_set_nexthop).
func (ix *index) resolveGateways4() {
	for key, t := range ix.tables {
		if key.family != V4 {
			continue
		}
		for _, n := range t.trie.All() {
			for i := range n.entries {
				e := &n.entries[i]
				if e.gw4 == 0 || !e.has(flagSingle) || e.route.NextHops[0].OnLink {
					continue
				}
				if ix.gatewayScope4(t, addr4(e.gw4), e.scope, e.dev) == ScopeHost {
					e.flags |= flagGwLocal
				}
			}
		}
	}
}

// gatewayScope4 returns the scope of the route a gateway resolves to
// through the route's device, or ScopeNowhere if none.
func (ix *index) gatewayScope4(t *table, gw netip.Addr, routeScope Scope, dev *device) Scope {
	var tables []*table
	if t.id != TableMain {
		tables = append(tables, t)
	}
	for _, id := range []TableID{TableLocal, TableMain} {
		if tab := ix.table(V4, id); tab != nil {
			tables = append(tables, tab)
		}
	}
	for _, tab := range tables {
		for n := tab.lookup(gw); n != nil; n = tab.shorter(n) {
			for i := range n.entries {
				e := &n.entries[i]
				if e.scope <= routeScope || (dev != nil && e.dev != dev) {
					continue
				}
				if e.typ == TypeUnicast || e.typ == TypeLocal {
					return e.scope
				}
			}
		}
	}
	return ScopeNowhere
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
	p := n.prefix()
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

// fam indexes per-family arrays: 0 for IPv4, 1 for IPv6.
func fam(f Family) int {
	if f == V4 {
		return 0
	}
	return 1
}

// dev returns the device of a name; nil if there is none.
func (ix *index) dev(name string) *device { return ix.devs[name] }
