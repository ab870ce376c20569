package fib

import (
	"cmp"
	"net/netip"
	"slices"
)

// The kernel's semantics of the lookup structure: which tables hold a
// route (merged or not), the rules in the order they are tried, the order
// of a prefix's routes, the tables every lookup consults, and how a
// gateway resolved when its route was added. index.go holds the data
// structure built from them.

// addRules sorts each family's rules by priority, as the kernel tries
// them, and decides whether the IPv4 local and main tables are merged: only
// while the namespace never had a custom rule and has the default ones.
func (ix *index) addRules(m *Model) {
	for i := range m.st.Rules {
		r := &m.st.Rules[i]
		ix.rules[fam(r.Family)] = append(ix.rules[fam(r.Family)], r)
	}
	for _, rules := range ix.rules {
		slices.SortStableFunc(rules, func(a, b *Rule) int { return cmp.Compare(a.Priority, b.Priority) })
	}
	ix.merged = !m.st.Unmerged && onlyDefaultRules(ix.rules[fam(V4)])
}

// tableOf returns the table a route lives in, creating it: while merged,
// IPv4 local routes live in main.
func (ix *index) tableOf(r *Route) *table {
	key := tableKey{r.Family, r.Table}
	if ix.merged && key == (tableKey{V4, TableLocal}) {
		key.id = TableMain
	}
	t := ix.tables[key]
	if t == nil {
		t = &table{id: key.id, ix: ix}
		ix.tables[key] = t
	}
	return t
}

// liveHop6 returns the index of the next hop that stands for an IPv6
// route in route selection: the first live one of a multipath route (the
// kernel keeps each as a sibling route of its own, and a dead sibling does
// not hide the live ones), else the first.
func liveHop6(r *Route) int {
	if r.Family != V6 || len(r.NextHops) < 2 {
		return 0
	}
	for i := range r.NextHops {
		if !r.NextHops[i].Dead {
			return i
		}
	}
	return 0
}

// plainChain4 returns the IPv4 tables every output lookup consults in
// order, when that order does not depend on the flow: while merged, main
// and default; otherwise when every rule selects all flows, looks a table
// up and suppresses nothing. It returns nil tables for any other rules.
func (ix *index) plainChain4() ([]*table, []*Rule) {
	if ix.merged {
		var chain []*table
		for _, t := range []*table{ix.main4, ix.default4} {
			if t != nil {
				chain = append(chain, t)
			}
		}
		return chain, nil
	}
	return ix.plainChain(V4)
}

// plainChain returns the tables of a family's rules when every rule
// selects all flows, looks a table up and suppresses nothing: the tables
// every lookup consults in order. It returns nil tables for any other
// rules.
func (ix *index) plainChain(f Family) ([]*table, []*Rule) {
	rules := ix.rules[fam(f)]
	for _, r := range rules {
		if r.Action != ActionLookup || !r.selectsAll() {
			return nil, nil
		}
	}
	return ix.ruleTables[fam(f)], rules
}

// resolveGateways4 marks IPv4 gateway routes whose gateway is a local
// address. The kernel resolves a gateway when the route is added
// (fib_check_nh_v4_gw): in the route's table, else in main, among routes of
// a narrower scope than the route's; the scope of the route it finds
// becomes the next hop's, and only a link-scope next hop is used as a
// gateway (rt_set_nexthop). Routes share few gateways: each (table,
// gateway, scope, device) is resolved once.
func (ix *index) resolveGateways4() {
	type key struct {
		t     *table
		gw    uint32
		scope Scope
		dev   *device
	}
	var resolved map[key]bool
	for i := range ix.entries {
		e := &ix.entries[i]
		if e.gw4 == 0 || !e.has(flagSingle) || e.route.Family != V4 || e.route.NextHops[0].OnLink {
			continue
		}
		t := ix.tableOf(e.route)
		k := key{t, e.gw4, e.scope, e.dev}
		local, ok := resolved[k]
		if !ok {
			local = ix.gatewayScope4(t, addr4(e.gw4), e.scope, e.dev) == ScopeHost
			if resolved == nil {
				resolved = make(map[key]bool)
			}
			resolved[k] = local
		}
		if local {
			ix.markGwLocal(t, i)
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
		for es := tab.lookup(gw); es != nil; es = tab.shorter(es) {
			for i := range es {
				e := &es[i]
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
