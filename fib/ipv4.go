package fib

import (
	"net/netip"
	"strings"
	"syscall"
)

var (
	loopbackNet4 = netip.MustParsePrefix("127.0.0.0/8")
	zeroNet4     = netip.MustParsePrefix("0.0.0.0/8")
	multicast4   = netip.MustParsePrefix("224.0.0.0/4")
	localMcast4  = netip.MustParsePrefix("224.0.0.0/24")
	limitedBcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})
	loopback4    = netip.AddrFrom4([4]byte{127, 0, 0, 1})
)

// tableLookup4 is fib_table_lookup: the longest prefix first; within a
// prefix, routes in alias order; a TOS-specific route only for its TOS;
// reject types answer at once; next hops must be alive, have carrier when
// the device ignores link-down routes, and match the requested output
// device. A route through a nexthop object none of whose next hops
// qualifies ends the search of its trie leaf ("goto miss"): the routes of
// the same network address, whatever their prefix length, are skipped.
func (m *Model) tableLookup4(t *table, fl *flow, res *Result) (fibResult, syscall.Errno) {
	var missed netip.Addr
	for es := t.lookup(fl.dst); es != nil; es = t.shorter(es) {
		if missed.IsValid() && es[0].route.Dst.Addr() == missed {
			continue
		}
		for i := range es {
			e := &es[i]
			if e.tos != 0 && e.tos != fl.tos&legacyTOSMask {
				continue
			}
			fr := fibResult{route: e.route, table: t.id, typ: e.typ, prefSrc: addr4(e.src4), scope: e.scope}
			if err := typeError(e.typ); err != 0 {
				res.stepRejected(t.id, e.route, err)
				return fr, err
			}
			if e.has(flagSingle) {
				if e.has(flagDead) || (e.has(flagLinkdown) && !fl.ignoreL && e.dev != nil && e.dev.conf.IgnoreRoutesWithLinkdown) || (fl.oif != "" && (e.dev == nil || e.dev.link.Name != fl.oif)) {
					continue
				}
				fr.hasNH, fr.dev, fr.gw, fr.gwLocal = true, e.dev, addr4(e.gw4), e.has(flagGwLocal)
				res.stepRoute(t.id, e.route)
				return fr, 0
			}
			if h, ok := m.idx.firstHop4(e.route, fl); ok {
				fr = m.idx.withHop(fr, h)
				fr.hops = m.idx.multipathHops4(e.route, fl)
				res.stepRoute(t.id, e.route)
				return fr, 0
			}
			if e.route.NHID != 0 {
				missed = e.route.Dst.Addr()
				break
			}
		}
	}
	res.stepNoRoute(t.id)
	return fibResult{}, syscall.EAGAIN
}

// firstHop4 returns the first next hop of a route of several (or of a
// nexthop object) that is alive, has carrier if its device ignores
// link-down routes, and is on the requested output device.
func (ix *index) firstHop4(r *Route, fl *flow) (hop, bool) {
	for j := range r.NextHops {
		nh := &r.NextHops[j]
		d := ix.dev(nh.Link)
		if nh.Dead || (nh.LinkDown && !fl.ignoreL && d != nil && d.conf.IgnoreRoutesWithLinkdown) || (fl.oif != "" && nh.Link != fl.oif) {
			continue
		}
		return hop{nh: nh, dev: d}, true
	}
	return hop{}, false
}

// fibLookup4 is the kernel's fib_lookup: while the tables are merged, one
// search of main (which holds local too), then default if main had no
// answer; otherwise the policy rules.
func (m *Model) fibLookup4(ix *index, fl *flow, res *Result) (fibResult, syscall.Errno) {
	if !ix.merged {
		fr, err := m.lookupRules(ix, fl, res)
		if err == syscall.ESRCH {
			err = syscall.ENETUNREACH
		}
		return fr, err
	}
	res.stepMerged()
	var fr fibResult
	err := syscall.ENETUNREACH
	if ix.main4 != nil {
		fr, err = m.tableLookup4(ix.main4, fl, res)
	}
	if err != 0 && ix.default4 != nil {
		fr, err = m.tableLookup4(ix.default4, fl, res)
	}
	if err == syscall.EAGAIN {
		err = syscall.ENETUNREACH
	}
	return fr, err
}

// output4 is ip_route_output_key_hash_rcu and __mkroute_output.
func (m *Model) output4(ix *index, fl *flow, res *Result) {
	fl.iif = ix.lo.link.Name
	var devOut *device
	saddr := netip.Addr{}
	if fl.hasSrc {
		saddr = fl.src
		if multicast4.Contains(saddr) || saddr == limitedBcast || zeroNet4.Contains(saddr) {
			res.fail(syscall.EINVAL, "source "+saddr.String()+" is a multicast, broadcast or zero-network address")
			return
		}
		owner, several := m.ownerOf4(ix, saddr)
		if fl.oif == "" && (multicast4.Contains(fl.dst) || fl.dst == limitedBcast) {
			if owner == nil {
				res.fail(syscall.ENETUNREACH, "source "+saddr.String()+" is not an address of this host")
				return
			}
			if several {
				m.ownersOutput4(ix, fl, res, saddr)
				return
			}
			devOut = owner
			res.step(Step{Kind: StepDevice, Dev: owner.link.Name, Note: "multicast or broadcast destination leaves through the device that owns the source"})
			mkroute4(res, fl.dst, fl.hasSrcGiven, devOut, saddr, nil, netip.Addr{})
			return
		}
		if owner == nil {
			res.fail(syscall.ENETUNREACH, "source "+saddr.String()+" is not an address of this host")
			return
		}
	}
	if fl.oif != "" {
		dev := ix.dev(fl.oif)
		if dev == nil {
			res.fail(syscall.ENODEV, "no device "+fl.oif)
			return
		}
		if !dev.link.Up {
			res.fail(syscall.ENETUNREACH, "output device "+fl.oif+" is down")
			return
		}
		devOut = dev
		if localMcast4.Contains(fl.dst) || fl.dst == limitedBcast {
			if !saddr.IsValid() {
				saddr = m.selectAddr4(ix, dev, netip.Addr{}, ScopeLink)
			}
			res.step(Step{Kind: StepDevice, Dev: fl.oif, Note: "link-local multicast or limited broadcast goes out the requested device without a lookup"})
			mkroute4(res, fl.dst, fl.hasSrcGiven, devOut, saddr, nil, netip.Addr{})
			return
		}
		if !saddr.IsValid() {
			if multicast4.Contains(fl.dst) {
				saddr = m.selectAddr4(ix, dev, netip.Addr{}, ScopeUniverse)
			} else if fl.dst.IsUnspecified() {
				saddr = m.selectAddr4(ix, dev, netip.Addr{}, ScopeHost)
			}
		}
	}
	if fl.dst.IsUnspecified() {
		if !saddr.IsValid() {
			saddr = loopback4
		}
		res.step(Step{Kind: StepDevice, Dev: ix.lo.link.Name, Note: "a packet to 0.0.0.0 is delivered locally"})
		res.Type = TypeLocal
		mkroute4(res, fl.dst, fl.hasSrcGiven, ix.lo, saddr, nil, netip.Addr{})
		return
	}
	if saddr.IsValid() {
		fl.src = saddr
		fl.hasSrc = true
	}
	fr, err := m.fibLookup4(ix, fl, res)
	if err != 0 {
		if devOut != nil {
			if !saddr.IsValid() {
				saddr = m.selectAddr4(ix, devOut, netip.Addr{}, ScopeLink)
			}
			res.step(Step{Kind: StepDevice, Dev: devOut.link.Name, Note: "no route through the requested device: the kernel assumes the destination is on link"})
			res.Type = TypeUnicast
			res.Rule = nil
			mkroute4(res, fl.dst, fl.hasSrcGiven, devOut, saddr, nil, netip.Addr{})
			return
		}
		res.found(fr)
		res.failLookup(err, fr)
		return
	}
	res.found(fr)
	if fr.typ == TypeLocal {
		if !saddr.IsValid() {
			saddr = localSource4(fr.prefSrc, fl.dst)
		}
		res.stepLocal(ix.lo)
		mkroute4(res, fl.dst, fl.hasSrcGiven, ix.lo, saddr, fr.route, fr.shownGateway())
		return
	}
	hops := m.preferSource4(ix, fr, saddr)
	switch {
	case len(hops) == 1:
		m.unicast4(ix, fl, res, ix.withHop(fr, hops[0]), saddr)
	case len(hops) > 1:
		m.eachPath(ix, &pathEnd{kind: endOutput4, fl: *fl, saddr: saddr}, res, fr, hops)
	default:
		m.unicast4(ix, fl, res, fr, saddr)
	}
}

// unicast4 is the end of output4 for a route through a next hop: the
// device and source address it gives, and mkroute4's checks.
func (m *Model) unicast4(ix *index, fl *flow, res *Result, fr fibResult, saddr netip.Addr) {
	devOut := fr.dev
	if devOut == nil {
		name := fr.nhName
		if name == "" {
			name = fr.route.Dev()
		}
		res.fail(syscall.ENODEV, "route names an unknown device "+name)
		return
	}
	if !saddr.IsValid() {
		var pref bool
		saddr, pref = ix.routeSource4(devOut, fr.prefSrc, fr.gw, fr.sourceScope())
		res.stepSource4(saddr, pref)
	}
	mkroute4(res, fl.dst, fl.hasSrcGiven, devOut, saddr, fr.route, fr.shownGateway())
}

// routeSource4 is the source a route through dev gives a packet whose
// sender fixed none: the route's preferred source, else
// inet_select_addr's choice for the gateway (which may be none) within the
// route's scope; pref says it is the preferred source.
func (ix *index) routeSource4(dev *device, prefSrc, gw netip.Addr, scope Scope) (src netip.Addr, pref bool) {
	if prefSrc.IsValid() {
		return prefSrc, true
	}
	a, ok := ix.selectSrc4(dev, uint4(gw), gw.IsValid(), gw.Is4(), scope)
	if !ok {
		return netip.Addr{}, false
	}
	return addr4(a), false
}

// localSource4 is the source of a packet a local route delivers, when the
// sender fixed none: the route's preferred source, else the destination.
func localSource4(prefSrc, dst netip.Addr) netip.Addr {
	if prefSrc.IsValid() {
		return prefSrc
	}
	return dst
}

// shownGateway is the gateway an answer through the result's next hop
// may name: none without a next hop or when the gateway is an address of
// this host (the kernel gives that next hop host scope).
func (fr *fibResult) shownGateway() netip.Addr {
	if !fr.hasNH || fr.gwLocal {
		return netip.Addr{}
	}
	return fr.gw
}

func loopbackSourceNote(saddr netip.Addr, dev string) string {
	return "source " + saddr.String() + " is a loopback address and " + dev + " is not the loopback device (route_localnet=0 on " + dev + ")"
}

// mkroute4 is __mkroute_output: the last checks on the chosen device and
// the type of the resulting route. route is the route found (nil if
// none), gw the gateway its next hop may name (shownGateway); srcGiven
// says the sender fixed the source, which the answer, like RTM_GETROUTE's,
// does not repeat.
func mkroute4(res *Result, dst netip.Addr, srcGiven bool, devOut *device, saddr netip.Addr, route *Route, gw netip.Addr) {
	name := devOut.link.Name
	res.Dev = name
	// The address tests below are those of loopbackNet4, limitedBcast and
	// multicast4 on numbers: this runs on every fast lookup.
	if !devOut.loopbackOK && uint4(saddr)>>24 == 127 {
		// A loopback source may leave only through lo (or a VRF), or
		// with route_localnet.
		if !res.noTrace {
			res.fail(syscall.EINVAL, loopbackSourceNote(saddr, name))
		} else {
			res.Err = syscall.EINVAL
		}
		return
	}
	typ := res.Type
	switch d := uint4(dst); {
	case d == 0xffffffff:
		typ = TypeBroadcast
	case d>>28 == 0xe:
		typ = TypeMulticast
	}
	if typ == TypeUnspec {
		typ = TypeUnicast
	}
	res.Type = typ
	if !srcGiven {
		res.PrefSrc = saddr
	}
	// Broadcast and local answers name no gateway, nor a multicast one
	// through a route as wide as 224.0.0.0/4 or wider.
	if gw.IsValid() && typ != TypeBroadcast && typ != TypeLocal && (typ != TypeMulticast || route.Dst.Bits() >= 4) {
		res.Gateway = gw
	}
}

// ownerOf4 is __ip_dev_find: the device that owns a local address, by its
// addresses, else by a local route for it in table local. several reports
// that the address is assigned to more than one device: the kernel finds
// it on the device it was assigned to last (inet_hash_insert adds at the
// head of the address hash's chain), an order no dump shows, and owner
// is then only the first of them in device order.
func (m *Model) ownerOf4(ix *index, a netip.Addr) (owner *device, several bool) {
	for _, d := range ix.byIndex {
		if !d.owns4(a) {
			continue
		}
		if owner != nil {
			return owner, true
		}
		owner = d
	}
	if owner != nil {
		return owner, false
	}
	id := TableLocal
	if ix.merged {
		id = TableMain
	}
	t := ix.table(V4, id)
	if t == nil {
		return nil, false
	}
	for es := t.lookup(a); es != nil; es = t.shorter(es) {
		for i := range es {
			e := &es[i]
			if e.route.Table != TableLocal {
				continue
			}
			if e.typ == TypeLocal {
				return e.dev, false
			}
			return nil, false
		}
	}
	return nil, false
}

// owns4 reports whether a is one of the device's IPv4 addresses.
func (d *device) owns4(a netip.Addr) bool {
	for _, ad := range d.addr4 {
		if ad.Prefix.Addr() == a {
			return true
		}
	}
	return false
}

// ownersOutput4 answers a multicast or broadcast destination without an
// output device from a source assigned to several devices: the packet
// leaves through the one the address was assigned to last, which the
// model cannot know, so it answers with each of them as a Path, as it
// answers a multipath route; the trace follows the first.
func (m *Model) ownersOutput4(ix *index, fl *flow, res *Result, saddr netip.Addr) {
	var owners []*device
	for _, d := range ix.byIndex {
		if d.owns4(saddr) {
			owners = append(owners, d)
		}
	}
	paths := make([]Path, len(owners))
	names := make([]string, len(owners))
	for i, d := range owners {
		sub := *res
		sub.Trace, sub.noTrace = nil, true
		mkroute4(&sub, fl.dst, fl.hasSrcGiven, d, saddr, nil, netip.Addr{})
		paths[i] = Path{Dev: sub.Dev, PrefSrc: sub.PrefSrc, Weight: 1, Err: sub.Err}
		names[i] = d.link.Name
	}
	res.step(Step{Kind: StepDevice, Dev: owners[0].link.Name, Note: "multicast or broadcast destination leaves through the device that owns the source; " +
		saddr.String() + " is an address of " + strings.Join(names, ", ") +
		": the kernel takes the device it was assigned to last, which no dump shows; the steps below follow the first"})
	mkroute4(res, fl.dst, fl.hasSrcGiven, owners[0], saddr, nil, netip.Addr{})
	res.Paths, res.byOwner = paths, true
}

// selectAddr4 is inet_select_addr: the first primary address on dev of a
// scope no wider than asked, preferring one in the same subnet as dst; else
// the first suitable address of any device, in device order.
func (m *Model) selectAddr4(ix *index, dev *device, dst netip.Addr, scope Scope) netip.Addr {
	a, ok := ix.selectSrc4(dev, uint4(dst), dst.IsValid(), dst.Is4(), scope)
	if !ok {
		return netip.Addr{}
	}
	return addr4(a)
}

// selectSrc4 is selectAddr4 on addresses as numbers: hasDst says whether
// there is a destination to prefer a subnet for, is4 whether it is an
// IPv4 one (dst).
func (ix *index) selectSrc4(dev *device, dst uint32, hasDst, is4 bool, scope Scope) (uint32, bool) {
	if dev != nil {
		localnet := ScopeHost
		if dev.conf.RouteLocalnet {
			localnet = ScopeLink
		}
		var first uint32
		found := false
		for _, a := range dev.src4 {
			if a.secondary || min(a.scope, localnet) > scope {
				continue
			}
			if !hasDst || (is4 && (a.addr^dst)&a.mask == 0) {
				return a.addr, true
			}
			if !found {
				first, found = a.addr, true
			}
		}
		if found {
			return first, true
		}
	}
	for _, a := range ix.any4 {
		if a.scope <= scope {
			return a.addr, true
		}
	}
	return 0, false
}
