package fib

import (
	"net/netip"
	"syscall"

	"github.com/fibguard/fibguard/fib/internal/fast"
)

// The output fast path: for the common query (a destination alone: no
// source, output or input device) on tables whose rules select every
// flow, Lookup answers from the trie's slot and the precomputed answer it
// names (a shape) instead of walking rules, routes and next hops. It is
// an accelerator, not the documented behaviour: the general path
// (Model.lookup: output4, output6) is the reference, and the tests compare
// the two, answer and trace, on random models (fast_test.go). The
// decisions both make are written once, in ipv4.go and ipv6.go (mkroute4,
// routeSource4, localSource4, answer6, the trace steps); this file holds
// only which routes have a precomputed answer, what it holds, and the
// reading of it. The data (slots, shapes, the chain's tries and direct
// tables) is package fast's.

// shape is the precomputed answer of a route that answers every output
// lookup of its family without source, output device or input device
// (fastShape): all the fast path needs of it besides its address. Routes
// share few shapes (a table of a million routes has a handful of devices
// and gateways).
type shape struct {
	dev *device
	typ RouteType
	// gw4, prefSrc4, scope and gwLocal are an IPv4 route's entry.gw4,
	// entry.src4, scope and flagGwLocal.
	gw4, prefSrc4 uint32
	scope         Scope
	gwLocal       bool
	// v6 marks the shape of an IPv6 route: gw6 and src6 are its gateway
	// and preferred source; local6: it delivers to this host through the
	// loopback device (deliversLocally6).
	gw6, src6  netip.Addr
	v6, local6 bool

	// Derived once every shape is known (finishShapes), zero while shapes
	// are interned: for IPv4, the gateway the answer names (none for a
	// gateway that is an address of this host), and the source the route
	// gives a flow without one (routeSource4) with pref, whether it is
	// the route's preferred source.
	gw   netip.Addr
	src  netip.Addr
	pref bool
}

// slotOf returns the slot of a prefix whose (first) route is entry e,
// route i: with the id of its shape when the route has one.
func (ix *index) slotOf(i int, e *entry) fast.Slot {
	sh, ok := fastShape(e)
	if !ok {
		return fast.NewSlot(uint32(i), 0)
	}
	return fast.NewSlot(uint32(i), ix.shapes.ID(sh))
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
		return shape{dev: e.dev, gw6: r.NextHops[0].Gateway, src6: r.PrefSrc, typ: e.typ, v6: true, local6: r.deliversLocally6()}, true
	}
	switch e.typ {
	case TypeUnicast, TypeLocal, TypeBroadcast, TypeAnycast:
	default:
		return shape{}, false
	}
	if !e.has(flagSingle) || e.tos != 0 || (e.has(flagLinkdown) && e.dev.conf.IgnoreRoutesWithLinkdown) {
		return shape{}, false
	}
	return shape{dev: e.dev, gw4: e.gw4, prefSrc4: e.src4, typ: e.typ, scope: e.scope, gwLocal: e.has(flagGwLocal)}, true
}

// finishShapes seals the shapes once every route has its slot, and
// derives what the IPv4 ones answer: the gateway named and the source,
// decided as the general path decides them (unicast4).
func (ix *index) finishShapes() {
	ix.shapes.Seal()
	for id := 1; id <= ix.shapes.Len(); id++ {
		sh := ix.shapes.At(uint32(id))
		if sh.v6 {
			continue
		}
		if !sh.gwLocal {
			sh.gw = addr4(sh.gw4)
		}
		if sh.typ != TypeLocal {
			sh.src, sh.pref = ix.routeSource4(sh.dev, addr4(sh.prefSrc4), addr4(sh.gw4), sh.scope)
		}
	}
}

// output4Fast is output4 for the common query — no source, no output
// device, a destination other than 0.0.0.0 and 255.255.255.255 — when the
// tables to consult do not depend on the flow (index.chain4) and the route
// found, if any, has a shape: the same answer and trace, read from the
// trie's slot without building a flow or walking the route's next hops.
// It reports false, having changed nothing, when output4 must answer.
func (m *Model) output4Fast(ix *index, dst netip.Addr, res *Result) bool {
	d := uint4(dst)
	// 0.0.0.0 and the limited broadcast have their own cases in output4
	// and mkroute4.
	if d == 0 || d == 0xffffffff || (ix.fast4 == nil && !ix.merged) {
		return false
	}
	s, at := fast.Find4(ix.fast4, d, dst)
	if at < 0 {
		// No table has a route: fibLookup4's ENETUNREACH.
		if !res.noTrace {
			ix.stepChain4(res, len(ix.chain4), false)
		}
		res.failLookup(syscall.ENETUNREACH, fibResult{})
		return true
	}
	id := s.Shape()
	if id == 0 {
		return false
	}
	sh := ix.shapes.At(id)
	t := ix.chain4[at]
	r := &ix.routes[s.Idx]
	if !res.noTrace {
		ix.stepChain4(res, at, true)
		res.stepRoute(t.id, r)
	}
	res.Route, res.Table, res.Type = r, t.id, sh.typ
	if !ix.merged {
		res.Rule = ix.chainRules4[at]
	}
	dev, src := sh.dev, sh.src
	if sh.typ == TypeLocal {
		dev, src = ix.lo, localSource4(addr4(sh.prefSrc4), dst)
		res.stepLocal(ix.lo)
	} else {
		res.stepSource4(src, sh.pref)
	}
	mkroute4(res, dst, false, dev, src, r, sh.gw)
	return true
}

// stepChain4 records what fibLookup4 records for the first n tables of
// the plain chain, which had no route, and with found the rule of the
// next one.
func (ix *index) stepChain4(res *Result, n int, found bool) {
	if ix.merged {
		res.stepMerged()
		for _, t := range ix.chain4[:n] {
			res.stepNoRoute(t.id)
		}
		return
	}
	ix.stepChainRules(res, ix.chainRules4[:n])
	if found {
		res.stepRule(ix.chainRules4[n])
	}
}

// stepChainRules records what lookupRules records for rules of the plain
// chain whose tables had no route.
func (ix *index) stepChainRules(res *Result, rules []*Rule) {
	for _, r := range rules {
		res.stepRule(r)
		res.stepNoRoute(r.Table)
	}
}

// output6Fast is output6 for a query without source and output device
// when the rules select every flow (index.chain6) and the route found, if
// any, has a shape: the same answer and trace, from the trie's slot and
// the route's shape. It reports false, having changed nothing, when
// output6 must answer.
func (m *Model) output6Fast(ix *index, dst netip.Addr, res *Result) bool {
	if ix.fast6 == nil {
		return false
	}
	s, at := fast.Find6(ix.fast6, dst)
	if at < 0 {
		if !res.noTrace {
			ix.stepChainRules(res, ix.chainRules6)
		}
		res.failLookup(syscall.ENETUNREACH, fibResult{})
		return true
	}
	id := s.Shape()
	if id == 0 {
		return false
	}
	sh := ix.shapes.At(id)
	t := ix.chain6[at]
	r := &ix.routes[s.Idx]
	rule := ix.chainRules6[at]
	if !res.noTrace {
		ix.stepChainRules(res, ix.chainRules6[:at])
		res.stepRule(rule)
		res.stepRoute(t.id, r)
	}
	res.Route, res.Rule, res.Table, res.Type = r, rule, t.id, sh.typ
	m.answer6(ix, res, sh.dev.link.Name, sh.local6, sh.gw6, sh.src6, sh.dev, dst, true)
	return true
}
