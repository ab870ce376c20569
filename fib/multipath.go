package fib

import (
	"fmt"
	"net/netip"
	"strings"
)

// hop is a next hop of a multipath route that the kernel may pick.
type hop struct {
	nh  *NextHop
	dev *device
}

// A multipath route (RTA_MULTIPATH, or a nexthop group) has several next
// hops, and the kernel picks one per flow by a hash of the flow's
// addresses (fib_multipath_hash, rt6_multipath_hash) against each next
// hop's share of the weights. The model does not reproduce the hash: it
// answers with the set of next hops the hash can land on.

// multipathHops4 is the set fib_select_multipath chooses from, for a
// lookup without an output device (with one, the kernel keeps the next
// hop the table lookup found on that device):
//   - a route with its own next hops (fib_rebalance) gives no share to a
//     dead next hop (RTNH_F_DEAD: its device is down) nor to one without
//     carrier (RTNH_F_LINKDOWN) while its device ignores link-down routes
//     (net.ipv4.conf.*.ignore_routes_with_linkdown, as set when the route
//     was balanced);
//   - a nexthop group (nexthop_select_path) hashes over all its members:
//     the kernel deletes a member whose device goes down or loses
//     carrier, so none is dead.
//
// The neighbour checks (net.ipv4.fib_multipath_use_neigh, and a group's
// check of each member's neighbour entry) are not modelled: neighbours
// are taken as reachable. It returns nil unless there are several hops.
func (ix *index) multipathHops4(r *Route, fl *flow) []hop {
	if len(r.NextHops) < 2 || fl.oif != "" {
		return nil
	}
	var hops []hop
	for i := range r.NextHops {
		nh := &r.NextHops[i]
		d := ix.dev(nh.Link)
		if r.NHID == 0 && (nh.Dead || (nh.LinkDown && !fl.ignoreL && d != nil && d.conf.IgnoreRoutesWithLinkdown)) {
			continue
		}
		hops = append(hops, hop{nh: nh, dev: d})
	}
	if len(hops) < 2 {
		return nil
	}
	return hops
}

// preferSource4 is fib_select_multipath's preference, for an output
// lookup that fixes its source, of the next hops whose own source address
// (the one the kernel would pick through them) is that source; the others
// are chosen only when none is. A nexthop group has no such preference.
// It may leave one hop.
func (m *Model) preferSource4(ix *index, fr fibResult, saddr netip.Addr) []hop {
	if !saddr.IsValid() || fr.route.NHID != 0 {
		return fr.hops
	}
	var same []hop
	for _, h := range fr.hops {
		if m.selectAddr4(ix, h.dev, h.nh.Gateway, fr.sourceScope()) == saddr {
			same = append(same, h)
		}
	}
	if len(same) == 0 {
		return fr.hops
	}
	return same
}

// multipathHops6 is the set fib6_select_path chooses from: the live next
// hops of the route (rt6_multipath_rebalance gives a dead one no share),
// or with a device required (a strict lookup) those on that device; a
// nexthop group hashes over all its members. Link-down next hops count as
// live: the IPv6 ignore_routes_with_linkdown sysctl is not modelled. It
// returns nil for a route of one next hop, and may return one hop.
func (ix *index) multipathHops6(r *Route, fl *flow) []hop {
	if len(r.NextHops) < 2 {
		return nil
	}
	var hops []hop
	for i := range r.NextHops {
		nh := &r.NextHops[i]
		if r.NHID == 0 && (nh.Dead || (fl.strict && fl.prefer != "" && nh.Link != fl.prefer)) {
			continue
		}
		hops = append(hops, hop{nh: nh, dev: ix.dev(nh.Link)})
	}
	return hops
}

// withHop returns the table lookup's result with h as its next hop.
func (ix *index) withHop(fr fibResult, h hop) fibResult {
	fr.dev, fr.gw, fr.nhName, fr.hasNH, fr.hops = h.dev, h.nh.Gateway, h.nh.Link, true, nil
	fr.gwLocal = false
	if fr.route.Family == V4 && h.nh.Gateway.IsValid() && !h.nh.OnLink {
		fr.gwLocal = ix.gatewayScope4(ix.tableOf(fr.route), h.nh.Gateway, fr.scope, h.dev) == ScopeHost
	}
	return fr
}

// pathEnd says how eachPath completes a result for one next hop: which
// end of a lookup, and what it needs besides the next hop. A struct
// holding a copy of the flow rather than a closure, so that the flow and
// the result of a lookup do not escape to the heap on every lookup, only
// this on a multipath one.
type pathEnd struct {
	kind   uint8
	fl     flow
	saddr  netip.Addr
	in     *Link
	output bool
}

const (
	endOutput4 uint8 = iota
	endInput4
	endV6
)

// finish completes res for the next hop of fr.
func (m *Model) finish(ix *index, pe *pathEnd, res *Result, fr fibResult) {
	switch pe.kind {
	case endOutput4:
		m.unicast4(ix, &pe.fl, res, fr, pe.saddr)
	case endInput4:
		m.forward4(ix, &pe.fl, res, fr, pe.in)
	default:
		m.finish6(ix, &pe.fl, fr, res, pe.output)
	}
}

// eachPath answers the lookup once per next hop of a multipath result.
// The first answer, with its trace, is res's own; res.Paths gets all of
// them.
func (m *Model) eachPath(ix *index, pe *pathEnd, res *Result, fr fibResult, hops []hop) {
	paths := make([]Path, len(hops))
	for i, h := range hops {
		sub := *res
		sub.Trace, sub.noTrace = nil, true
		m.finish(ix, pe, &sub, ix.withHop(fr, h))
		paths[i] = Path{Dev: sub.Dev, Gateway: sub.Gateway, PrefSrc: sub.PrefSrc, Weight: max(h.nh.Weight, 1), Err: sub.Err}
	}
	res.step(Step{Kind: StepDevice, Note: multipathNote(fr.route, paths)})
	m.finish(ix, pe, res, ix.withHop(fr, hops[0]))
	res.Paths = paths
}

// multipathNote explains a multipath answer in the trace.
func multipathNote(r *Route, paths []Path) string {
	hops := make([]string, len(paths))
	for i, p := range paths {
		hops[i] = p.String()
	}
	what := "multipath route"
	if r.NHID != 0 {
		what = fmt.Sprintf("route through nexthop group %d", r.NHID)
	}
	return fmt.Sprintf("%s: the kernel picks one of %d next hops per flow, by a hash of the flow: %s; the steps below follow the first",
		what, len(paths), strings.Join(hops, " | "))
}

// sourceScope is the widest scope of the source address the kernel picks
// through the result's next hop when the route has no preferred source:
// the route's scope, except through a nexthop object, whose source was
// picked when the object was created (nh_create_ipv4), one scope narrower
// than the next hop's own: link scope for a next hop without a gateway
// (which has host scope), and narrower than link for one with a gateway.
func (fr *fibResult) sourceScope() Scope {
	if fr.route == nil || fr.route.NHID == 0 {
		return fr.scope
	}
	if fr.gw.IsValid() {
		return ScopeLink - 1
	}
	return ScopeLink
}
