package fib

import (
	"net/netip"
	"syscall"
)

var (
	multicast6 = netip.MustParsePrefix("ff00::/8")
	linkLocal6 = netip.MustParsePrefix("fe80::/10")
)

// needStrict6 is rt6_need_strict: destinations that only make sense on one
// device (multicast, link-local, loopback).
func needStrict6(a netip.Addr) bool {
	return multicast6.Contains(a) || linkLocal6.Contains(a) || a == netip.IPv6Loopback()
}

// tableLookup6 is fib6_table_lookup with rt6_select: the longest prefix
// first; within it, the lowest metric whose next hop is usable, preferring
// (or, when strict, requiring) the requested device; otherwise back off to
// a shorter prefix. Reject types carry their error.
func (m *Model) tableLookup6(t *table, fl *flow, res *Result) (fibResult, syscall.Errno) {
	for es := t.lookup(fl.dst); es != nil; es = t.shorter(es) {
		if r := selectRoute6(es, fl.prefer, fl.strict); r != nil {
			fr := fibResult{route: r.route, table: t.id, typ: r.typ, prefSrc: r.prefSrc(), scope: r.scope}
			if r.has(flagHasNH) {
				fr.hasNH, fr.dev, fr.gw = true, r.dev, r.gateway()
				if hops := m.idx.multipathHops6(r.route, fl); len(hops) > 0 {
					fr = m.idx.withHop(fr, hops[0])
					if len(hops) > 1 {
						fr.hops = hops
					}
				}
			}
			if err := typeError(r.typ); err != 0 {
				res.stepRejected(t.id, r.route, err)
				return fr, err
			}
			res.step(Step{Kind: StepRoute, Table: t.id, Route: r.route})
			return fr, 0
		}
	}
	res.step(Step{Kind: StepNoRoute, Table: t.id})
	return fibResult{}, syscall.EAGAIN
}

// selectRoute6 picks among the routes of one prefix (in metric order): the
// first metric group with a usable route; in it, the first route on the
// requested device, else (when not strict) the first usable one.
func selectRoute6(entries []entry, oif string, strict bool) *entry {
	var best *entry
	bestScore := -1
	for i := range entries {
		e := &entries[i]
		if i > 0 && e.metric != entries[i-1].metric {
			if best != nil {
				return best
			}
			bestScore = -1
		}
		if !e.has(flagHasNH) || e.has(flagDead) {
			continue
		}
		score := 0
		if oif == "" || e.onDev(oif) {
			score = 2
		} else if strict {
			continue
		}
		if score > bestScore {
			best, bestScore = e, score
		}
	}
	return best
}

// onDev reports whether the route has a live next hop on the device (for
// a route of one next hop: whether that is on it).
func (e *entry) onDev(name string) bool {
	if e.has(flagSingle) || len(e.route.NextHops) == 0 {
		return e.dev != nil && e.dev.link.Name == name
	}
	for _, nh := range e.route.NextHops {
		if !nh.Dead && nh.Link == name {
			return true
		}
	}
	return false
}

// fibLookup6 runs the IPv6 rules (the kernel's fast path without custom
// rules is the same walk over the default rules).
func (m *Model) fibLookup6(ix *index, fl *flow, res *Result) (fibResult, syscall.Errno) {
	fr, err := m.lookupRules(ix, fl, res)
	if err == syscall.ESRCH || err == syscall.EAGAIN {
		err = syscall.ENETUNREACH
	}
	return fr, err
}

// output6 is ip6_route_output: a packet this host sends.
func (m *Model) output6(ix *index, fl *flow, res *Result) {
	fl.iif = ix.lo.link.Name
	fl.strict = needStrict6(fl.dst) || (fl.oif != "" && !fl.hasSrc)
	fl.prefer = fl.oif
	fr, err := m.fibLookup6(ix, fl, res)
	res.found(fr)
	if err != 0 {
		res.failLookup(err, fr)
		return
	}
	m.paths6(ix, fl, fr, res, true)
}

// paths6 finishes an IPv6 answer once per next hop the kernel may pick
// (multipathHops6), or once.
func (m *Model) paths6(ix *index, fl *flow, fr fibResult, res *Result, output bool) {
	if len(fr.hops) < 2 || fr.route.Type == TypeLocal || (fr.route.Type == TypeAnycast && fr.route.Protocol == "kernel") {
		m.finish6(ix, fl, fr, res, output)
		return
	}
	m.eachPath(ix, &pathEnd{kind: endV6, fl: *fl, output: output}, res, fr, fr.hops)
}

// output6Fast is output6 for a query without source and output device
// when the rules select every flow (index.chain6) and the route found, if
// any, is a fast one (fastShape): the same answer and trace, from the
// trie's slot and the route's shape. It reports false, having changed
// nothing, when output6 must answer.
func (m *Model) output6Fast(ix *index, dst netip.Addr, res *Result) bool {
	if ix.chain6 == nil {
		return false
	}
	var s slot
	at := -1
	for i, t := range ix.chain6 {
		if t == nil {
			continue
		}
		// The trie's Lookup is called here when there is no direct
		// table: lookup6 is not inlined.
		var v slot
		var ok bool
		if t.dir6 == nil {
			v, ok = t.trie.Lookup(dst)
		} else {
			v, ok = t.lookup6(dst)
		}
		if ok {
			s, at = v, i
			break
		}
	}
	if at < 0 {
		if !res.noTrace {
			ix.stepChain6(res, len(ix.chain6))
		}
		res.failLookup(syscall.ENETUNREACH, fibResult{})
		return true
	}
	id := s.shape &^ slotGroup
	if id == 0 {
		return false
	}
	sh := &ix.shapes[id-1]
	t := ix.chain6[at]
	r := &ix.routes[s.idx]
	rule := ix.chainRules6[at]
	if !res.noTrace {
		ix.stepChain6(res, at)
		res.step(Step{Kind: StepRule, Rule: rule})
		res.step(Step{Kind: StepRoute, Table: t.id, Route: r})
	}
	res.Route, res.Rule, res.Table, res.Type = r, rule, t.id, sh.typ
	res.Dev = sh.dev.link.Name
	if sh.local6 {
		res.Dev = ix.lo.link.Name
		res.step(Step{Kind: StepDevice, Dev: res.Dev, Note: "a local route is delivered through the loopback device, whatever device the route names"})
	} else {
		res.Gateway = sh.gw6
	}
	if sh.src6.IsValid() {
		res.PrefSrc = sh.src6
		res.step(Step{Kind: StepSource, Addr: sh.src6, Note: "the route's preferred source"})
	} else if a := m.selectAddr6(ix, sh.dev, dst); a.IsValid() {
		res.PrefSrc = a
		res.step(Step{Kind: StepSource, Addr: a, Note: "RFC 6724 source address selection"})
	}
	return true
}

// stepChain6 records what lookupRules records for the first n rules of
// the plain chain, whose tables had no route.
func (ix *index) stepChain6(res *Result, n int) {
	for _, r := range ix.chainRules6[:n] {
		res.step(Step{Kind: StepRule, Rule: r})
		res.step(Step{Kind: StepNoRoute, Table: r.Table})
	}
}

// input6 is ip6_route_input_lookup: a packet arriving on fl.iif. IPv6
// applies forwarding later than the lookup, so the lookup answers as for
// output with the input device preferred.
func (m *Model) input6(ix *index, fl *flow, res *Result) {
	if ix.dev(fl.iif) == nil {
		res.fail(syscall.ENODEV, "no device "+fl.iif)
		return
	}
	fl.uid = invalidUID
	fl.strict = needStrict6(fl.dst)
	fl.prefer = fl.iif
	fl.oif = ""
	fr, err := m.fibLookup6(ix, fl, res)
	res.found(fr)
	if err != 0 {
		res.failLookup(err, fr)
		return
	}
	m.paths6(ix, fl, fr, res, false)
}

// finish6 sets the device (loopback for local and anycast routes, as
// ip6_rt_get_dev_rcu does), the gateway and the source address.
func (m *Model) finish6(ix *index, fl *flow, fr fibResult, res *Result, output bool) {
	r := fr.route
	res.Dev = r.Dev()
	if fr.nhName != "" {
		res.Dev = fr.nhName
	}
	// Local routes, and the anycast routes the kernel adds for its own
	// subnets, deliver to this host; an anycast route a user added goes
	// out its device (it lacks RTF_ANYCAST).
	if r.Type == TypeLocal || (r.Type == TypeAnycast && r.Protocol == "kernel") {
		res.Dev = ix.lo.link.Name
		res.step(Step{Kind: StepDevice, Dev: res.Dev, Note: "a local route is delivered through the loopback device, whatever device the route names"})
	} else if fr.hasNH {
		res.Gateway = fr.gw
	}
	if !output {
		return
	}
	switch {
	case fr.prefSrc.IsValid():
		res.PrefSrc = fr.prefSrc
		res.step(Step{Kind: StepSource, Addr: fr.prefSrc, Note: "the route's preferred source"})
	default:
		if a := m.selectAddr6(ix, ix.sourceDev6(fr), fl.dst); a.IsValid() {
			res.PrefSrc = a
			res.step(Step{Kind: StepSource, Addr: a, Note: "RFC 6724 source address selection"})
		}
	}
}

// sourceDev6 is the device whose addresses the source is picked from
// (ip6_route_get_saddr): the next hop's, but for a route through a nexthop
// group the first member's (nexthop_fib6_nh), whichever next hop the flow
// takes.
func (ix *index) sourceDev6(fr fibResult) *device {
	if r := fr.route; r.NHID != 0 && len(r.NextHops) > 1 {
		return ix.dev(r.NextHops[0].Link)
	}
	return fr.dev
}
