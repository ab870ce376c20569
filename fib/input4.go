package fib

import (
	"net/netip"
	"syscall"
)

// invalidUID is the uid of a flow that no local socket sent: input lookups
// carry it, so uidrange rules do not match them.
const invalidUID = ^uint32(0)

// input4 is ip_route_input_slow: a packet from fl.src arriving on fl.iif.
func (m *Model) input4(ix *index, fl *flow, res *Result) {
	d := ix.dev(fl.iif)
	if d == nil {
		res.fail(syscall.ENODEV, "no device "+fl.iif)
		return
	}
	dev := d.link
	fl.uid = invalidUID
	fl.oif = ""
	conf := d.conf
	src, dst := fl.src, fl.dst
	switch {
	case multicast4.Contains(dst):
		// The model does not know which groups the host joined; a packet
		// for a group it did not join is refused.
		res.fail(syscall.EINVAL, "multicast destination "+dst.String()+" on input: group membership is not modelled")
		return
	case multicast4.Contains(src) || src == limitedBcast:
		res.fail(syscall.EINVAL, "martian source "+src.String())
		return
	case dst == limitedBcast || (src.IsUnspecified() && dst.IsUnspecified()):
		if !zeroNet4.Contains(src) {
			if verr := m.validateSource4(ix, fl, dev, 0); verr != 0 {
				res.fail(syscall.EINVAL, "martian source "+src.String()+" on "+dev.Name+" (reverse path check)")
				return
			}
		}
		m.broadcastInput4(ix, res, dev)
		return
	case dst.IsUnspecified():
		res.fail(syscall.EINVAL, "martian destination 0.0.0.0")
		return
	case zeroNet4.Contains(src):
		res.fail(syscall.EINVAL, "martian source "+src.String()+" in 0.0.0.0/8")
		return
	case loopbackNet4.Contains(dst) && !conf.RouteLocalnet:
		res.fail(syscall.EINVAL, "martian destination "+dst.String()+": loopback address arriving on "+dev.Name+" (route_localnet=0)")
		return
	case !loopbackNet4.Contains(dst) && loopbackNet4.Contains(src) && !conf.RouteLocalnet:
		res.fail(syscall.EINVAL, "martian source "+src.String()+": loopback address arriving on "+dev.Name+" (route_localnet=0)")
		return
	}
	fr, err := m.fibLookup4(ix, fl, res)
	if err != 0 {
		res.found(fr)
		if !conf.Forwarding {
			err = syscall.EHOSTUNREACH
			res.fail(err, errNote(fr, err)+"; forwarding is off on "+dev.Name)
			return
		}
		res.failLookup(err, fr)
		return
	}
	res.found(fr)
	switch fr.typ {
	case TypeBroadcast:
		if !src.IsUnspecified() {
			if verr := m.validateSource4(ix, fl, dev, 0); verr != 0 {
				res.fail(syscall.EINVAL, "martian source "+src.String()+" on "+dev.Name+" (reverse path check)")
				return
			}
		}
		m.broadcastInput4(ix, res, dev)
		return
	case TypeLocal:
		if verr := m.validateSource4(ix, fl, dev, 0); verr != 0 {
			res.fail(syscall.EINVAL, "martian source "+src.String()+" on "+dev.Name+" (reverse path check)")
			return
		}
		res.Dev = ix.lo.link.Name
		res.step(Step{Kind: StepDevice, Dev: res.Dev, Note: "a local route delivers the packet to this host"})
		return
	}
	if !conf.Forwarding {
		res.fail(syscall.EHOSTUNREACH, "forwarding is off on "+dev.Name)
		return
	}
	if fr.typ != TypeUnicast {
		res.fail(syscall.EINVAL, "martian destination: "+fr.typ.String()+" route cannot be forwarded")
		return
	}
	if len(fr.hops) > 1 {
		m.eachPath(ix, &pathEnd{kind: endInput4, fl: *fl, in: dev}, res, fr, fr.hops)
		return
	}
	m.forward4(ix, fl, res, fr, dev)
}

// forward4 is __mkroute_input for a route through a next hop: the
// reverse-path check against the output device, and the device and
// gateway the packet is forwarded to.
func (m *Model) forward4(ix *index, fl *flow, res *Result, fr fibResult, dev *Link) {
	if fr.dev == nil {
		res.fail(syscall.ENODEV, "route names an unknown device "+fr.route.Dev())
		return
	}
	out := fr.dev.link
	if verr := m.validateSource4(ix, fl, dev, out.Index); verr != 0 {
		res.fail(syscall.EINVAL, "martian source "+fl.src.String()+" on "+dev.Name+" (reverse path check)")
		return
	}
	res.Dev = out.Name
	if !fr.gwLocal {
		res.Gateway = fr.gw
	}
	res.step(Step{Kind: StepDevice, Dev: out.Name, Note: "forwarded through the route's device"})
}

func (m *Model) broadcastInput4(ix *index, res *Result, _ *Link) {
	res.Type = TypeBroadcast
	res.Dev = ix.lo.link.Name
	res.step(Step{Kind: StepDevice, Dev: res.Dev, Note: "broadcast is delivered to this host"})
}

// validateSource4 is fib_validate_source: reverse-path filtering and the
// martian check of a source address that belongs to this host. It returns
// a non-zero errno when the source is refused.
func (m *Model) validateSource4(ix *index, fl *flow, dev *Link, oif int) syscall.Errno {
	conf := ix.dev(dev.Name).conf
	if conf.RPFilter == 0 && dev.Index != oif {
		if !ix.customLocal && ix.merged {
			if m.ownerOf4Addr(fl.src) {
				return syscall.EINVAL
			}
			return 0
		}
	}
	rev := flow{family: V4, dst: fl.src, src: fl.dst, hasSrc: true, iif: ix.lo.link.Name, tos: fl.tos}
	if oif != 0 {
		if l, ok := m.LinkByIndex(oif); ok {
			rev.iif = l.Name
		}
	}
	scratch := Result{noTrace: true}
	fr, err := m.fibLookup4(ix, &rev, &scratch)
	if err != 0 {
		if conf.RPFilter != 0 {
			return syscall.EXDEV
		}
		return 0
	}
	if fr.typ != TypeUnicast {
		return syscall.EINVAL
	}
	for _, nh := range fr.route.NextHops {
		if nh.Link == dev.Name {
			return 0
		}
	}
	if len(ix.dev(dev.Name).addr4) == 0 {
		if conf.RPFilter != 0 {
			return syscall.EXDEV
		}
		return 0
	}
	if conf.RPFilter == 1 {
		return syscall.EXDEV
	}
	rev.oif = dev.Name
	rev.ignoreL = true
	if _, err := m.fibLookup4(ix, &rev, &scratch); err == 0 {
		return 0
	}
	return 0
}

// ownerOf4Addr reports whether a is assigned to any device.
func (m *Model) ownerOf4Addr(a netip.Addr) bool {
	for i := range m.st.Addrs {
		if m.st.Addrs[i].Prefix.Addr() == a {
			return true
		}
	}
	return false
}
