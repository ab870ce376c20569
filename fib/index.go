package fib

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/gaissmai/bart"

	"github.com/fibguard/fibguard/fib/internal/direct"
)

// slot is what a table's trie holds for one prefix: where the prefix's
// routes are and, for the common case of a route that every flow without
// an output device takes, the shape of that route: all an IPv4 output
// lookup needs of it. Such a lookup reads nothing beyond the trie and a
// few hot shapes and devices: at a million routes, one more random memory
// access per lookup costs as much as the trie walk itself. A slot is 8
// bytes, stored by value in the trie, as small as a pointer.
type slot struct {
	// idx is the index in Model.Routes (and index.entries) of the prefix's
	// only route or, with slotGroup, of its first route in the kernel's
	// order; index.groupOf maps that to the index of its routes in
	// index.groups.
	idx uint32
	// shape holds slotGroup and, when the (first) route is the answer of
	// every IPv4 flow that names no output device and does not ignore link
	// state, 1 + the index of its shape in index.shapes; 0 otherwise. Such
	// a route has no TOS, one next hop that is alive and usable, a known
	// device, and a type that routes packets (unicast, local, broadcast,
	// anycast).
	shape uint32
}

// slotGroup marks a slot of a prefix with several routes (index.groupOf).
const slotGroup uint32 = 1 << 31

func (s slot) group() bool { return s.shape&slotGroup != 0 }

// shape is what an IPv4 output lookup needs of a route besides its
// address: routes share few shapes (a table of a million routes has a
// handful of devices and gateways).
type shape struct {
	dev *device
	// gw4 and src4 are an IPv4 route's entry.gw4 and entry.src4; gw6 and
	// src6 an IPv6 route's gateway and preferred source.
	gw4, src4 uint32
	gw6, src6 netip.Addr
	typ       RouteType
	scope     Scope
	gwLocal   bool
	// local6: an IPv6 route that delivers to this host through the
	// loopback device (finish6).
	local6 bool
}

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

// table is one routing table of one family: a longest-prefix-match trie of
// slots.
type table struct {
	id   TableID
	trie bart.Table[slot]
	ix   *index
	// dir is the direct table of a big IPv4 table of chain4, dir6 that of
	// a big IPv6 table of chain6; nil otherwise (lookup4, lookup6).
	dir  *direct.Table4[slot]
	dir6 *direct.Table6[slot]
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
	// shapes are the shapes of slots; shapeIDs finds them while the index
	// is built.
	shapes   []shape
	shapeIDs map[shape]uint32
	// lastShape is the id of the shape found last: routes next to each
	// other often share it, and comparing is cheaper than hashing.
	lastShape uint32
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
	// nothing (chainRules are those rules). Output4Fast answers from it.
	chain4      []*table
	chainRules4 []*Rule
	// chain6 and chainRules6 are the same for IPv6 (plainChain).
	chain6      []*table
	chainRules6 []*Rule
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
	owned []slot
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
// accelerators of the output fast path (chains, direct tables).
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
	ix.shapeIDs = nil
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
	ix.shapeIDs = make(map[shape]uint32)
	if len(routes) >= direct.MinPrefixes {
		// Only a model this big may have a table that gets a direct
		// table.
		ix.owned = make([]slot, len(routes))
		for i := range ix.owned {
			ix.owned[i].idx = ^uint32(0)
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
		t.trie.Modify(r.Dst, insert)
	}
}

// inserter is the trie callback of insertRoutes: one method value for
// every insertion, since a closure per route would be an allocation per
// route.
type inserter struct {
	ix       *index
	cur      slot
	curIdx   int
	curTable *table
}

// insert stores the current route's slot for a new prefix, or adds the
// route to the group of a prefix that has one already.
func (in *inserter) insert(old slot, ok bool) (slot, bool) {
	ix := in.ix
	if !ok {
		if ix.owned != nil {
			ix.owned[in.curIdx] = in.cur
		}
		return in.cur, false
	}
	if !old.group() {
		// finishGroups names the group's owner.
		if ix.owned != nil {
			ix.owned[old.idx].idx = ^uint32(0)
		}
		ix.groupOf[old.idx] = uint32(len(ix.groups))
		ix.groups = append(ix.groups, nil)
		ix.groupInfo = append(ix.groupInfo, groupInfo{t: in.curTable, routes: []uint32{old.idx}})
		old = slot{idx: old.idx, shape: slotGroup}
	}
	g := &ix.groupInfo[ix.groupOf[old.idx]]
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
}

// buildDirect gives each big table of the fast path's chains its direct
// table.
func (ix *index) buildDirect() {
	for _, t := range ix.chain4 {
		if t != nil && t.dir == nil && t.trie.Size4() >= direct.MinPrefixes {
			if ps := ownedSlots(ix, t, t.trie.Size4(), direct.NewPrefix4[slot]); ps != nil {
				t.dir = direct.Build4(ps)
			}
		}
	}
	for _, t := range ix.chain6 {
		if t != nil && t.dir6 == nil && t.trie.Size6() >= direct.MinPrefixes {
			if ps := ownedSlots(ix, t, t.trie.Size6(), direct.NewPrefix6[slot]); ps != nil {
				t.dir6 = direct.Build6(ps)
			}
		}
	}
}

// ownedSlots returns the prefixes of table t and their slots from
// index.owned, in route order, each made by mk; nil if they are not as many
// as n, the number of the trie's prefixes of that family. IPv4 and IPv6
// direct tables are built from it: walking a trie of a million prefixes
// costs about as much as the rest of their build.
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

// lookup4 is t.trie.Lookup(dst) for the IPv4 address d == uint4(dst),
// through the direct table when the table has one.
func (t *table) lookup4(d uint32, dst netip.Addr) (slot, bool) {
	if t.dir == nil {
		return t.trie.Lookup(dst)
	}
	if s, ok, trie := t.dir.Lookup(d); !trie {
		return s, ok
	}
	return t.trie.Lookup(dst)
}

// lookup6 is t.trie.Lookup(dst) for an IPv6 address, through the direct
// table when the table has one and it knows the answer.
func (t *table) lookup6(dst netip.Addr) (slot, bool) {
	if t.dir6 == nil {
		return t.trie.Lookup(dst)
	}
	if s, ok, trie := t.dir6.Lookup(dst); !trie {
		return s, ok
	}
	return t.trie.Lookup(dst)
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

// slotOf returns the slot of a prefix whose (first) route is entry e,
// route i.
func (ix *index) slotOf(i int, e *entry) slot {
	s := slot{idx: uint32(i)}
	sh, ok := fastShape(e)
	if !ok {
		return s
	}
	if ix.lastShape != 0 && ix.shapes[ix.lastShape-1] == sh {
		s.shape = ix.lastShape
		return s
	}
	id, ok := ix.shapeIDs[sh]
	if !ok {
		if len(ix.shapes) >= int(slotGroup-1) {
			return s
		}
		ix.shapes = append(ix.shapes, sh)
		id = uint32(len(ix.shapes))
		ix.shapeIDs[sh] = id
	}
	s.shape, ix.lastShape = id, id
	return s
}

// fastShape returns the shape of the first route of a prefix when that
// route answers every output lookup of its family that names no source,
// output device or input device.
//
// IPv4 (tableLookup4): no TOS, one next hop that is alive and usable, a
// known device, a type that routes packets (unicast, local, broadcast,
// anycast). IPv6 (selectRoute6 without a preferred device takes the first
// route with a live next hop): one live next hop on a known device and a
// type that routes packets.
func fastShape(e *entry) (shape, bool) {
	r := e.route
	if e.dev == nil || !e.has(flagHasNH) || e.has(flagDead) {
		return shape{}, false
	}
	if r.Family == V6 {
		if typeError(e.typ) != 0 || !e.has(flagSingle) {
			return shape{}, false
		}
		return shape{dev: e.dev, gw6: r.NextHops[0].Gateway, src6: r.PrefSrc, typ: e.typ,
			local6: r.Type == TypeLocal || (r.Type == TypeAnycast && r.Protocol == "kernel")}, true
	}
	switch e.typ {
	case TypeUnicast, TypeLocal, TypeBroadcast, TypeAnycast:
	default:
		return shape{}, false
	}
	if !e.has(flagSingle) || e.tos != 0 || (e.has(flagLinkdown) && e.dev.conf.IgnoreRoutesWithLinkdown) {
		return shape{}, false
	}
	return shape{dev: e.dev, gw4: e.gw4, src4: e.src4, typ: e.typ, scope: e.scope, gwLocal: e.has(flagGwLocal)}, true
}

// markGwLocal sets flagGwLocal on route i, in its entry, its group and its
// slot.
func (ix *index) markGwLocal(t *table, i int) {
	r := ix.entries[i].route
	ix.entries[i].flags |= flagGwLocal
	s, _ := t.trie.Get(r.Dst)
	if !s.group() {
		s = ix.slotOf(i, &ix.entries[i])
		t.trie.Insert(r.Dst, s)
		if ix.owned != nil {
			ix.owned[i] = s
		}
		return
	}
	g := ix.groups[ix.groupOf[s.idx]]
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
		s := ix.slotOf(int(first), &ix.groups[gi][0])
		s.shape |= slotGroup
		g.t.trie.Insert(ix.groups[gi][0].route.Dst, s)
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
	s, ok := t.trie.Lookup(dst)
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
	_, s, ok := shorterLPM(&t.trie, es[0].route.Dst)
	if !ok {
		return nil
	}
	return t.ix.entriesOf(s)
}

// entriesOf returns the routes of a slot's prefix.
func (ix *index) entriesOf(s slot) []entry {
	if s.group() {
		return ix.groups[ix.groupOf[s.idx]]
	}
	return ix.entries[s.idx : s.idx+1 : s.idx+1]
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
