package fib

import (
	"cmp"
	"fmt"
	"slices"
	"syscall"
)

// DelRoute plans `ip route del`: it deletes the first route, in the
// kernel's order, of the route's family, table (a zero Table is main, or
// local for local, broadcast and anycast routes), destination and TOS
// whose other fields match where they are given: Type, Protocol, Metric,
// PrefSrc, and the device and gateway of the first next hop. Like the
// kernel (fib_table_delete, ip6_route_del) it fails with ESRCH when no
// route matches.
type DelRoute struct{ Route Route }

// DelAddress plans `ip addr del`: the address of that prefix on that
// device, with the routes the kernel made for it when no remaining address
// of the device needs them (fib_del_ifaddr, ipv6_del_addr). Deleting a
// primary IPv4 address deletes its secondaries too (promote_secondaries=0,
// the kernel's default: promotion is not modelled); once no device has the
// address, IPv4 routes of table main that name it as preferred source go
// too (fib_sync_down_addr), and once a device has no IPv4 address left,
// every IPv4 route through it (fib_disable_ip). Fails with EADDRNOTAVAIL when there is no such
// address.
type DelAddress struct{ Address Address }

func (c DelRoute) apply(m *Model) error {
	want := c.Route
	if !want.Dst.IsValid() {
		return fmt.Errorf("delete route: invalid destination")
	}
	want.Dst = want.Dst.Masked()
	want.Family = FamilyOf(want.Dst.Addr())
	if want.Table == TableUnspec {
		want.Table = defaultTable(want.Type)
	}
	best := -1
	for i := range m.st.Routes {
		if !delMatches(&m.st.Routes[i], &want) {
			continue
		}
		if best < 0 || cmp.Compare(m.st.Routes[i].Metric, m.st.Routes[best].Metric) < 0 {
			best = i
		}
	}
	if best < 0 {
		return fmt.Errorf("delete route %s: %w", &want, syscall.ESRCH)
	}
	m.st.Routes = slices.Delete(m.st.Routes, best, best+1)
	return nil
}

// defaultTable is the table iproute2 names when none is given: local for
// the types only table local holds, main otherwise.
func defaultTable(t RouteType) TableID {
	switch t {
	case TypeLocal, TypeBroadcast, TypeAnycast:
		return TableLocal
	}
	return TableMain
}

// delMatches reports whether route r is one that a deletion described by
// want selects: the same family, table, destination and TOS, and the same
// value of each other field want gives.
func delMatches(r, want *Route) bool {
	if r.Family != want.Family || r.Table != want.Table || r.Dst != want.Dst || r.TOS != want.TOS {
		return false
	}
	switch {
	case want.Type != TypeUnspec && r.Type != want.Type,
		want.Protocol != "" && r.Protocol != want.Protocol,
		want.Metric != 0 && r.Metric != want.Metric,
		want.PrefSrc.IsValid() && r.PrefSrc != want.PrefSrc:
		return false
	}
	if len(want.NextHops) == 0 {
		return true
	}
	w := want.NextHops[0]
	return (w.Link == "" || r.Dev() == w.Link) &&
		(!w.Gateway.IsValid() || (len(r.NextHops) > 0 && r.NextHops[0].Gateway == w.Gateway))
}

func (c DelAddress) apply(m *Model) error {
	a := c.Address
	i := slices.IndexFunc(m.st.Addrs, func(o Address) bool { return o.Link == a.Link && o.Prefix == a.Prefix })
	if i < 0 {
		return fmt.Errorf("delete address %s dev %s: %w", a.Prefix, a.Link, syscall.EADDRNOTAVAIL)
	}
	a = m.st.Addrs[i]
	if a.Prefix.Addr().Is6() {
		m.delAddr6(a)
		return nil
	}
	if !a.Secondary {
		for _, s := range m.secondariesOf(a) {
			m.delAddr4(s)
		}
	}
	m.delAddr4(a)
	return nil
}

// secondariesOf returns the secondary IPv4 addresses in the subnet of a
// primary one.
func (m *Model) secondariesOf(prim Address) []Address {
	var out []Address
	for _, o := range m.st.Addrs {
		if o.Secondary && o.Link == prim.Link && o.Prefix.Addr().Is4() && sameSubnet(o, prim) {
			out = append(out, o)
		}
	}
	return out
}

func sameSubnet(a, b Address) bool {
	return a.Prefix.Bits() == b.Prefix.Bits() && a.Prefix.Masked() == b.Prefix.Masked()
}

// primaryOf returns the primary address of an IPv4 address: itself, or for
// a secondary the primary of its subnet on its device.
func (m *Model) primaryOf(a Address) Address {
	if !a.Secondary {
		return a
	}
	for _, o := range m.st.Addrs {
		if !o.Secondary && o.Link == a.Link && o.Prefix.Addr().Is4() && sameSubnet(o, a) {
			return o
		}
	}
	return a
}

// delAddr4 removes one IPv4 address and the routes made for it that no
// other address of the device makes.
func (m *Model) delAddr4(a Address) {
	dev, _ := m.Link(a.Link)
	gone := kernelRoutes4(dev, a, m.primaryOf(a).Prefix.Addr())
	m.removeAddr(a)
	var kept []Route
	for _, o := range m.st.Addrs {
		if o.Link == a.Link && o.Prefix.Addr().Is4() {
			kept = append(kept, kernelRoutes4(dev, o, m.primaryOf(o).Prefix.Addr())...)
		}
	}
	m.dropKernelRoutes(gone, kept)
	if !slices.ContainsFunc(m.st.Addrs, func(o Address) bool { return o.Link == a.Link && o.Prefix.Addr().Is4() }) {
		m.disableIP4(a.Link)
	}
	ip := a.Prefix.Addr()
	if slices.ContainsFunc(m.st.Addrs, func(o Address) bool { return o.Prefix.Addr() == ip }) {
		return
	}
	m.st.Routes = slices.DeleteFunc(m.st.Routes, func(r Route) bool {
		return r.Family == V4 && r.Table == TableMain && r.PrefSrc == ip
	})
}

// disableIP4 is fib_disable_ip with force, once the last IPv4 address of
// a device is gone: every IPv4 route through the device, of any type,
// loses its next hops on it, and those left without a live one go.
func (m *Model) disableIP4(dev string) {
	m.eachHopOn(dev, func(r *Route, nh *NextHop) bool {
		if r.Family == V4 && r.NHID == 0 {
			nh.Dead, nh.LinkDown = true, true
		}
		return true
	})
	m.dropDeadRoutes()
}

// delAddr6 removes one IPv6 address and the routes made for it that no
// other address of the device makes (the local route of its address, its
// prefix route, its anycast route).
func (m *Model) delAddr6(a Address) {
	dev, _ := m.Link(a.Link)
	gone := m.kernelRoutes6(dev, a)
	m.removeAddr(a)
	var kept []Route
	for _, o := range m.st.Addrs {
		if o.Link == a.Link && o.Prefix.Addr().Is6() {
			kept = append(kept, m.kernelRoutes6(dev, o)...)
		}
	}
	m.dropKernelRoutes(gone, kept)
}

func (m *Model) removeAddr(a Address) {
	m.st.Addrs = slices.DeleteFunc(m.st.Addrs, func(o Address) bool { return o.Link == a.Link && o.Prefix == a.Prefix })
}

// dropKernelRoutes deletes the routes of gone that are not in kept.
func (m *Model) dropKernelRoutes(gone, kept []Route) {
	for i := range gone {
		r := &gone[i]
		if slices.ContainsFunc(kept, func(k Route) bool { return sameKernelRoute(&k, r) }) {
			continue
		}
		m.st.Routes = slices.DeleteFunc(m.st.Routes, func(o Route) bool { return sameKernelRoute(&o, r) })
	}
}
