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
			res.stepRoute(t.id, r.route)
			return fr, 0
		}
	}
	res.stepNoRoute(t.id)
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
	if len(fr.hops) < 2 || fr.route.deliversLocally6() {
		m.finish6(ix, fl, fr, res, output)
		return
	}
	m.eachPath(ix, &pathEnd{kind: endV6, fl: *fl, output: output}, res, fr, fr.hops)
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

// finish6 ends an IPv6 answer through the result's next hop (answer6).
func (m *Model) finish6(ix *index, fl *flow, fr fibResult, res *Result, output bool) {
	r := fr.route
	dev := r.Dev()
	if fr.nhName != "" {
		dev = fr.nhName
	}
	var gw netip.Addr
	if fr.hasNH {
		gw = fr.gw
	}
	m.answer6(ix, res, dev, r.deliversLocally6(), gw, fr.prefSrc, ix.sourceDev6(fr), fl.dst, output)
}

// answer6 sets the device of an IPv6 answer, dev or, for a route that
// delivers to this host, the loopback device (ip6_rt_get_dev_rcu); the
// gateway gw otherwise; and for output the source: the route's preferred
// one, else RFC 6724's choice for dst among srcDev's addresses.
func (m *Model) answer6(ix *index, res *Result, dev string, local bool, gw, prefSrc netip.Addr, srcDev *device, dst netip.Addr, output bool) {
	res.Dev = dev
	if local {
		res.Dev = ix.lo.link.Name
		res.stepLocal(ix.lo)
	} else {
		res.Gateway = gw
	}
	if !output {
		return
	}
	if prefSrc.IsValid() {
		res.PrefSrc = prefSrc
		res.stepSource6(prefSrc, true)
	} else if a := m.selectAddr6(ix, srcDev, dst); a.IsValid() {
		res.PrefSrc = a
		res.stepSource6(a, false)
	}
}

// deliversLocally6 reports whether an IPv6 route delivers to this host:
// local routes, and the anycast routes the kernel adds for its own
// subnets; an anycast route a user added goes out its device (it lacks
// RTF_ANYCAST).
func (r *Route) deliversLocally6() bool {
	return r.Type == TypeLocal || (r.Type == TypeAnycast && r.Protocol == "kernel")
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
