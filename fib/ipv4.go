package fib

import (
	"net/netip"
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
// device.
func (m *Model) tableLookup4(t *table, fl *flow, res *Result) (fibResult, syscall.Errno) {
	for n := t.lookup(fl.dst); n != nil; n = t.shorter(n) {
		for i := range n.entries {
			e := &n.entries[i]
			if e.tos != 0 && e.tos != fl.tos&legacyTOSMask {
				continue
			}
			fr := fibResult{route: e.route, table: t.id, typ: e.typ, prefSrc: addr4(e.src4), scope: e.scope, multipath: !e.has(flagSingle)}
			if err := typeError(e.typ); err != 0 {
				res.stepRejected(t.id, e.route, err)
				return fr, err
			}
			if e.has(flagSingle) {
				if e.has(flagDead) || (e.has(flagLinkdown) && !fl.ignoreL && e.dev != nil && e.dev.conf.IgnoreRoutesWithLinkdown) || (fl.oif != "" && (e.dev == nil || e.dev.link.Name != fl.oif)) {
					continue
				}
				fr.hasNH, fr.dev, fr.gw, fr.gwLocal = true, e.dev, addr4(e.gw4), e.has(flagGwLocal)
				res.step(Step{Kind: StepRoute, Table: t.id, Route: e.route})
				return fr, 0
			}
			for j := range e.route.NextHops {
				nh := &e.route.NextHops[j]
				d := m.idx.dev(nh.Link)
				if nh.Dead || (nh.LinkDown && !fl.ignoreL && d != nil && d.conf.IgnoreRoutesWithLinkdown) || (fl.oif != "" && nh.Link != fl.oif) {
					continue
				}
				fr.hasNH, fr.dev, fr.gw, fr.nhName = true, d, nh.Gateway, nh.Link
				res.step(Step{Kind: StepRoute, Table: t.id, Route: e.route})
				return fr, 0
			}
		}
	}
	res.step(Step{Kind: StepNoRoute, Table: t.id})
	return fibResult{}, syscall.EAGAIN
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
	res.step(Step{Kind: StepMerged})
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
		owner := m.ownerOf4(ix, saddr)
		if fl.oif == "" && (multicast4.Contains(fl.dst) || fl.dst == limitedBcast) {
			if owner == nil {
				res.fail(syscall.ENETUNREACH, "source "+saddr.String()+" is not an address of this host")
				return
			}
			devOut = owner
			res.step(Step{Kind: StepDevice, Dev: owner.link.Name, Note: "multicast or broadcast destination leaves through the device that owns the source"})
			m.mkroute4(ix, fl, res, fibResult{}, devOut, saddr)
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
			m.mkroute4(ix, fl, res, fibResult{}, devOut, saddr)
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
		m.mkroute4(ix, fl, res, fibResult{}, ix.lo, saddr)
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
			m.mkroute4(ix, fl, res, fibResult{}, devOut, saddr)
			return
		}
		res.found(fr)
		res.failLookup(err, fr)
		return
	}
	res.found(fr)
	if fr.typ == TypeLocal {
		if !saddr.IsValid() {
			if fr.prefSrc.IsValid() {
				saddr = fr.prefSrc
			} else {
				saddr = fl.dst
			}
		}
		res.step(Step{Kind: StepDevice, Dev: ix.lo.link.Name, Note: "a local route is delivered through the loopback device, whatever device the route names"})
		m.mkroute4(ix, fl, res, fr, ix.lo, saddr)
		return
	}
	devOut = fr.dev
	if devOut == nil {
		res.fail(syscall.ENODEV, "route names an unknown device "+fr.route.Dev())
		return
	}
	if fr.multipath {
		res.step(Step{Kind: StepDevice, Dev: devOut.link.Name, Note: "multipath route: the model reports the first usable next hop; the kernel picks one by flow hash"})
	}
	if !saddr.IsValid() {
		if fr.prefSrc.IsValid() {
			saddr = fr.prefSrc
			res.step(Step{Kind: StepSource, Addr: saddr, Note: "the route's preferred source"})
		} else {
			saddr = m.selectAddr4(ix, devOut, fr.gw, fr.scope)
			if saddr.IsValid() {
				res.step(Step{Kind: StepSource, Addr: saddr, Note: "first primary address of suitable scope, preferring the route's device"})
			}
		}
	}
	m.mkroute4(ix, fl, res, fr, devOut, saddr)
}

// mkroute4 is __mkroute_output: the last checks on the chosen device and
// the type of the resulting route.
func (m *Model) mkroute4(ix *index, fl *flow, res *Result, fr fibResult, devOut *device, saddr netip.Addr) {
	name := devOut.link.Name
	if !devOut.conf.RouteLocalnet && loopbackNet4.Contains(saddr) && devOut.link.Kind != KindLoopback && devOut.link.Kind != KindVRF {
		if !res.noTrace {
			res.fail(syscall.EINVAL, "source "+saddr.String()+" is a loopback address and "+name+" is not the loopback device (route_localnet=0 on "+name+")")
		} else {
			res.Err = syscall.EINVAL
		}
		res.Dev = name
		return
	}
	typ := res.Type
	switch {
	case fl.dst == limitedBcast:
		typ = TypeBroadcast
	case multicast4.Contains(fl.dst):
		typ = TypeMulticast
	}
	if typ == TypeUnspec {
		typ = TypeUnicast
	}
	res.Type = typ
	res.Dev = name
	// Like RTM_GETROUTE, report the chosen source only when the caller did
	// not fix it.
	if !fl.hasSrcGiven {
		res.PrefSrc = saddr
	}
	if fr.hasNH && typ != TypeBroadcast && typ != TypeLocal {
		if typ != TypeMulticast || fr.route.Dst.Bits() >= 4 {
			if !fr.gwLocal {
				res.Gateway = fr.gw
			}
		}
	}
}

// ownerOf4 is __ip_dev_find: the device that owns a local address, by its
// addresses, else by a local route for it in table local.
func (m *Model) ownerOf4(ix *index, a netip.Addr) *device {
	for _, d := range ix.byIndex {
		for _, ad := range d.addr4 {
			if ad.Prefix.Addr() == a {
				return d
			}
		}
	}
	id := TableLocal
	if ix.merged {
		id = TableMain
	}
	t := ix.table(V4, id)
	if t == nil {
		return nil
	}
	for n := t.lookup(a); n != nil; n = t.shorter(n) {
		for i := range n.entries {
			e := &n.entries[i]
			if e.route.Table != TableLocal {
				continue
			}
			if e.typ == TypeLocal {
				return e.dev
			}
			return nil
		}
	}
	return nil
}

// selectAddr4 is inet_select_addr: the first primary address on dev of a
// scope no wider than asked, preferring one in the same subnet as dst; else
// the first suitable address of any device, in device order.
func (m *Model) selectAddr4(ix *index, dev *device, dst netip.Addr, scope Scope) netip.Addr {
	var addr netip.Addr
	if dev != nil {
		localnet := ScopeHost
		if dev.conf.RouteLocalnet {
			localnet = ScopeLink
		}
		for _, a := range dev.addr4 {
			if a.Secondary || min(a.Scope, localnet) > scope {
				continue
			}
			if !dst.IsValid() || a.Prefix.Masked().Contains(dst) {
				return a.Prefix.Addr()
			}
			if !addr.IsValid() {
				addr = a.Prefix.Addr()
			}
		}
		if addr.IsValid() {
			return addr
		}
	}
	for _, d := range ix.byIndex {
		for _, a := range d.addr4 {
			if a.Scope != ScopeLink && !a.Secondary && a.Scope <= scope {
				return a.Prefix.Addr()
			}
		}
	}
	return netip.Addr{}
}
