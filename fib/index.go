package fib

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/gaissmai/bart"

	"github.com/fibguard/fibguard/fib/internal/direct"
	"github.com/fibguard/fibguard/fib/internal/fast"
)

// entry is a route with the facts a lookup tests resolved in advance, so
// the hot path touches the Route itself only for the route it returns.
type entry struct {
	route *Route
	// dev is the device of the first next hop (of an IPv6 multipath
	// route, the first live one: liveHop6), nil if none or unknown.
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
	// flagSingle: exactly one next hop of the route's own (not a nexthop
	// object); flagDead and flagLinkdown are its flags.
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
	link *Link
	conf DevConf
	// loopbackOK: a loopback source may leave through the device (it is
	// the loopback device or a VRF, or route_localnet is set).
	loopbackOK bool
	addr4      []*Address
	// src4 are the addresses of addr4 as source selection tests them.
	src4  []srcAddr4
	addr6 []*Address
	// src6 are the addresses of addr6 that source selection may pick.
	src6 []srcAddr6
}

// srcAddr4 is an IPv4 address of a device as inet_select_addr tests it.
type srcAddr4 struct {
	addr, mask uint32
	scope      Scope
	secondary  bool
}

// table is one routing table of one family: a longest-prefix-match trie
// of slots (fast.Table: with a direct table when the table is big and on
// the fast path's chain).
type table struct {
	id TableID
	fast.Table
	ix *index
}

type tableKey struct {
	family Family
	id     TableID
}

// index is the lookup structure derived from a Model. It is rebuilt after
// the model changes.
type index struct {
	tables map[tableKey]*table
	// entries holds the entry of every route, in Model.Routes order; groups
	// the entries of each prefix that has several routes, in the order the
	// kernel tries them.
	entries []entry
	groups  [][]entry
	// groupOf maps the slot index of a prefix with several routes (its
	// first route) to its place in groups; groupInfo is what building the
	// groups needs.
	groupOf   map[uint32]uint32
	groupInfo []groupInfo
	routes    []Route
	// shapes are the precomputed answers of slots (fast.go).
	shapes fast.Shapes[shape]
	// merged is the kernel's "no custom rules" state for IPv4: the local
	// table's routes live in main's trie and rules are not consulted.
	merged bool
	// rules holds each family's rules in priority order, and ruleTables
	// the table each lookup rule names (nil if it does not exist); index
	// with fam.
	rules      [2][]*Rule
	ruleTables [2][]*table
	// chain4, when set, is the IPv4 tables an output lookup consults in
	// order, each to its end: main and default while merged, or the
	// tables of rules that select every flow, look a table up and suppress
	// nothing (chainRules are those rules; fast4 their fast.Tables).
	// Output4Fast answers from it.
	chain4      []*table
	chainRules4 []*Rule
	fast4       []*fast.Table
	// chain6, chainRules6 and fast6 are the same for IPv6 (plainChain).
	chain6      []*table
	chainRules6 []*Rule
	fast6       []*fast.Table
	devs        map[string]*device
	// byIndex lists the devices in index order, the kernel's device order.
	byIndex []*device
	// any4 are the addresses inet_select_addr falls back to: the primary
	// IPv4 addresses of every device, in device order, that are not of
	// link scope.
	any4 []srcAddr4
	// lo is the loopback device.
	lo *device
	// main4 is IPv4 table main (holding local too while merged) and
	// default4 table default: the merged lookup's two tables.
	main4, default4 *table
	// customLocal is set once a route of type local was added by a user.
	customLocal bool
	// owned mirrors the tries while the index of a model with at least
	// direct.MinPrefixes routes is built (nil otherwise): owned[i] is the
	// slot of route i's prefix when route i is the route the slot names
	// (the prefix's only route, or the first of its group), and has
	// another idx otherwise. Direct tables are built from it: walking a
	// trie of a million prefixes costs about as much as the rest of their
	// build.
	owned []fast.Slot
}

// Freeze builds the lookup structure now. Lookups build it on first use,
// and Apply drops it; call Freeze before sharing a model between
// goroutines.
func (m *Model) Freeze() { m.index() }

func (m *Model) index() *index {
	if m.idx == nil {
		m.idx = buildIndex(m)
	}
	return m.idx
}

// buildIndex derives the lookup structure of a model. The kernel's
// semantics come first and stay in their own steps: the devices in index
// order with their addresses, the rules in priority order and whether the
// IPv4 local and main tables are merged (tables.go: which tables, in what
// order); then the tries of slots, the groups of a prefix's routes in the
// kernel's order, gateways resolved as when each route was added; last the
// accelerators of the output fast path (fast.go: the answers slots name;
// the chains and their direct tables).
func buildIndex(m *Model) *index {
	ix := &index{
		tables: make(map[tableKey]*table),
		devs:   make(map[string]*device, len(m.st.Links)),
		routes: m.st.Routes,
	}
	ix.addDevices(m)
	ix.addAddrs(m.st.Addrs)
	ix.addRules(m)
	ix.insertRoutes(m.st.Routes)
	ix.orderGroups()
	ix.resolveGateways4()
	ix.finishGroups()
	ix.finishShapes()
	ix.linkTables()
	ix.buildDirect()
	ix.owned = nil
	return ix
}

// addDevices adds the model's devices with their effective sysctls, in
// the kernel's (index) order, and finds the loopback device.
func (ix *index) addDevices(m *Model) {
	for i := range m.st.Links {
		l := &m.st.Links[i]
		d := &device{link: l, conf: m.conf(l.Name)}
		d.loopbackOK = d.conf.RouteLocalnet || l.Kind == KindLoopback || l.Kind == KindVRF
		ix.devs[l.Name] = d
		ix.byIndex = append(ix.byIndex, d)
		if l.Kind == KindLoopback && ix.lo == nil {
			ix.lo = d
		}
	}
	if ix.lo == nil {
		ix.lo = &device{link: &Link{Name: "lo", Kind: KindLoopback, Index: 1}, loopbackOK: true}
	}
	slices.SortStableFunc(ix.byIndex, func(a, b *device) int { return cmp.Compare(a.link.Index, b.link.Index) })
}

// addAddrs gives each device its addresses, in the model's order, as
// source selection tests them, and collects the IPv4 addresses
// inet_select_addr falls back to.
func (ix *index) addAddrs(addrs []Address) {
	for i := range addrs {
		a := &addrs[i]
		d := ix.devs[a.Link]
		if d == nil {
			continue
		}
		if a.Prefix.Addr().Is4() {
			d.addr4 = append(d.addr4, a)
			mask := ^uint32(0)
			if a.Prefix.Bits() < 32 {
				mask = ^(^uint32(0) >> a.Prefix.Bits())
			}
			d.src4 = append(d.src4, srcAddr4{addr: uint4(a.Prefix.Addr()), mask: mask, scope: a.Scope, secondary: a.Secondary})
		} else {
			d.addr6 = append(d.addr6, a)
			if sa, ok := newSrcAddr6(a, label6(a.Prefix.Addr()), addrScope6(a.Prefix.Addr())); ok {
				d.src6 = append(d.src6, sa)
			}
		}
	}
	for _, d := range ix.byIndex {
		for _, a := range d.src4 {
			if a.scope != ScopeLink && !a.secondary {
				ix.any4 = append(ix.any4, a)
			}
		}
	}
}

// insertRoutes puts every route into its table's trie: a prefix's only
// route as a slot of its own, a prefix with several routes as a group
// (orderGroups puts them in the kernel's order).
func (ix *index) insertRoutes(routes []Route) {
	ix.entries = make([]entry, len(routes))
	ix.groupOf = make(map[uint32]uint32)
	if len(routes) >= direct.MinPrefixes {
		// Only a model this big may have a table that gets a direct
		// table.
		ix.owned = make([]fast.Slot, len(routes))
		for i := range ix.owned {
			ix.owned[i].Idx = ^uint32(0)
		}
	}
	ins := &inserter{ix: ix}
	insert := ins.insert // one method value for all the routes
	// Routes of one table are mostly adjacent: the last table found is
	// checked before the map.
	var lastKey tableKey
	var lastTable *table
	for i := range routes {
		r := &routes[i]
		if r.Type == TypeLocal && r.Protocol != "kernel" {
			ix.customLocal = true
		}
		t := lastTable
		if t == nil || (tableKey{r.Family, r.Table}) != lastKey {
			t, lastKey = ix.tableOf(r), tableKey{r.Family, r.Table}
			lastTable = t
		}
		e := &ix.entries[i]
		*e = ix.entryOf(r)
		ins.cur, ins.curIdx, ins.curTable = ix.slotOf(i, e), i, t
		t.Trie.Modify(r.Dst, insert)
	}
}

// inserter is the trie callback of insertRoutes: one method value for
// every insertion, since a closure per route would be an allocation per
// route.
type inserter struct {
	ix       *index
	cur      fast.Slot
	curIdx   int
	curTable *table
}

// insert stores the current route's slot for a new prefix, or adds the
// route to the group of a prefix that has one already.
func (in *inserter) insert(old fast.Slot, ok bool) (fast.Slot, bool) {
	ix := in.ix
	if !ok {
		if ix.owned != nil {
			ix.owned[in.curIdx] = in.cur
		}
		return in.cur, false
	}
	if !old.Group() {
		// finishGroups names the group's owner.
		if ix.owned != nil {
			ix.owned[old.Idx].Idx = ^uint32(0)
		}
		ix.groupOf[old.Idx] = uint32(len(ix.groups))
		ix.groups = append(ix.groups, nil)
		ix.groupInfo = append(ix.groupInfo, groupInfo{t: in.curTable, routes: []uint32{old.Idx}})
		old = fast.NewSlot(old.Idx, 0).AsGroup()
	}
	g := &ix.groupInfo[ix.groupOf[old.Idx]]
	g.routes = append(g.routes, uint32(in.curIdx))
	return old, false
}

// orderGroups sorts the routes of each prefix with several into the
// order the kernel tries them (aliasOrder) and makes their entries.
func (ix *index) orderGroups() {
	for gi := range ix.groupInfo {
		g := &ix.groupInfo[gi]
		g.key = g.routes[0]
		slices.SortStableFunc(g.routes, func(a, b uint32) int { return aliasOrder(&ix.routes[a], &ix.routes[b]) })
		es := make([]entry, len(g.routes))
		for j, ri := range g.routes {
			es[j] = ix.entries[ri]
		}
		ix.groups[gi] = es
	}
}

// linkTables points each rule to the table it looks up, and sets the
// tables a lookup consults when that order does not depend on the flow.
func (ix *index) linkTables() {
	for f, rules := range ix.rules {
		for _, r := range rules {
			ix.ruleTables[f] = append(ix.ruleTables[f], ix.tables[tableKey{r.Family, r.Table}])
		}
	}
	ix.main4 = ix.table(V4, TableMain)
	ix.default4 = ix.table(V4, TableDefault)
	ix.chain4, ix.chainRules4 = ix.plainChain4()
	ix.chain6, ix.chainRules6 = ix.plainChain(V6)
	ix.fast4, ix.fast6 = fastTables(ix.chain4), fastTables(ix.chain6)
}

// fastTables returns the fast.Tables of a chain's tables, nil for a
// missing one.
func fastTables(chain []*table) []*fast.Table {
	if chain == nil {
		return nil
	}
	ts := make([]*fast.Table, len(chain))
	for i, t := range chain {
		if t != nil {
			ts[i] = &t.Table
		}
	}
	return ts
}

// buildDirect gives each big table of the fast path's chains its direct
// table.
func (ix *index) buildDirect() {
	for _, t := range ix.chain4 {
		if t != nil && t.Dir4 == nil && t.Trie.Size4() >= direct.MinPrefixes {
			if ps := ownedSlots(ix, t, t.Trie.Size4(), direct.NewPrefix4[fast.Slot]); ps != nil {
				t.Dir4 = direct.Build4(ps)
			}
		}
	}
	for _, t := range ix.chain6 {
		if t != nil && t.Dir6 == nil && t.Trie.Size6() >= direct.MinPrefixes {
			if ps := ownedSlots(ix, t, t.Trie.Size6(), direct.NewPrefix6[fast.Slot]); ps != nil {
				t.Dir6 = direct.Build6(ps)
			}
		}
	}
}

// ownedSlots returns the prefixes of table t and their slots from
// index.owned, in route order, each made by mk; nil if they are not as many
// as n, the number of the trie's prefixes of that family. IPv4 and IPv6
// direct tables are built from it: walking a trie of a million prefixes
// costs about as much as the rest of their build.
func ownedSlots[P any](ix *index, t *table, n int, mk func(netip.Prefix, fast.Slot) P) []P {
	if ix.owned == nil {
		return nil
	}
	ps := make([]P, 0, n)
	var lastKey tableKey
	var last *table
	for i, s := range ix.owned {
		if s.Idx != uint32(i) {
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

func (ix *index) entryOf(r *Route) entry {
	e := entry{route: r, typ: r.Type, tos: r.TOS, scope: r.Scope, metric: r.Metric, src4: uint4(r.PrefSrc)}
	if len(r.NextHops) == 1 && r.NHID == 0 {
		// A route through a nexthop object picks its source by the
		// object's scope (fibResult.sourceScope): it takes the general
		// path even with one next hop.
		e.flags |= flagSingle
	}
	if len(r.NextHops) > 0 {
		nh := &r.NextHops[liveHop6(r)]
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

// groupInfo is a prefix with several routes while the index is built: its
// table, its routes (indexes in Model.Routes, in the kernel's order once
// sorted) and its key in index.groupOf.
type groupInfo struct {
	t      *table
	routes []uint32
	key    uint32
}

// markGwLocal sets flagGwLocal on route i, in its entry, its group and its
// slot.
func (ix *index) markGwLocal(t *table, i int) {
	r := ix.entries[i].route
	ix.entries[i].flags |= flagGwLocal
	s, _ := t.Trie.Get(r.Dst)
	if !s.Group() {
		s = ix.slotOf(i, &ix.entries[i])
		t.Trie.Insert(r.Dst, s)
		if ix.owned != nil {
			ix.owned[i] = s
		}
		return
	}
	g := ix.groups[ix.groupOf[s.Idx]]
	for j := range g {
		if g[j].route == r {
			g[j].flags |= flagGwLocal
		}
	}
}

// finishGroups gives each prefix with several routes its final slot: that
// of its first route in the kernel's order, which answers the fast path
// when it is usable by every flow (a route with a TOS sorts before those
// without, so a first route without TOS leaves none with one).
func (ix *index) finishGroups() {
	for gi := range ix.groupInfo {
		g := &ix.groupInfo[gi]
		first := g.routes[0]
		if first != g.key {
			delete(ix.groupOf, g.key)
			ix.groupOf[first] = uint32(gi)
		}
		s := ix.slotOf(int(first), &ix.groups[gi][0]).AsGroup()
		g.t.Trie.Insert(ix.groups[gi][0].route.Dst, s)
		if ix.owned != nil {
			ix.owned[first] = s
		}
	}
	ix.groupInfo = nil
}

// shorterLPM returns the longest prefix in t shorter than p that covers
// it.
func shorterLPM[V any](t *bart.Table[V], p netip.Prefix) (netip.Prefix, V, bool) {
	if p.Bits() == 0 {
		var zero V
		return netip.Prefix{}, zero, false
	}
	return t.LookupPrefixLPM(netip.PrefixFrom(p.Addr(), p.Bits()-1).Masked())
}

// lookup returns the routes of the longest prefix in the table that
// covers dst, in the order the kernel tries them (nil if none); shorter
// walks to the less specific ones.
func (t *table) lookup(dst netip.Addr) []entry {
	s, ok := t.Trie.Lookup(dst)
	if !ok {
		return nil
	}
	return t.ix.entriesOf(s)
}

// shorter returns the routes of the next shorter prefix that covers those
// of es, nil if there is none. Lookups only need it when no route of the
// longest prefix was usable, so it is searched for then rather than
// stored.
func (t *table) shorter(es []entry) []entry {
	_, s, ok := shorterLPM(&t.Trie, es[0].route.Dst)
	if !ok {
		return nil
	}
	return t.ix.entriesOf(s)
}

// entriesOf returns the routes of a slot's prefix.
func (ix *index) entriesOf(s fast.Slot) []entry {
	if s.Group() {
		return ix.groups[ix.groupOf[s.Idx]]
	}
	return ix.entries[s.Idx : s.Idx+1 : s.Idx+1]
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
