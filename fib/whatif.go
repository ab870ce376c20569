package fib

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/fibguard/fibguard/internal/netipx"
)

// Change is a planned change to a model: a device, an address, a route, a
// rule or a sysctl. Model.Apply makes it with the kernel's side effects.
type Change interface {
	apply(m *Model) error
}

// AddLink plans a new device. An Index of 0 takes the next free index.
type AddLink struct{ Link Link }

// AddAddress plans an address; applying it adds the routes the kernel adds
// (fib_add_ifaddr for IPv4, addrconf for IPv6).
type AddAddress struct{ Address Address }

// AddRoute plans a route, as `ip route add` would add it: a zero Table is
// main (local for local and broadcast routes), a zero Type unicast, and a
// zero Scope what iproute2 picks: host for local routes, link for
// broadcast, multicast and unicast routes without a gateway, global
// otherwise.
type AddRoute struct{ Route Route }

// AddRule plans a policy rule. Like the kernel, the first custom IPv4 rule
// splits the merged local and main tables for good.
type AddRule struct{ Rule Rule }

// SetConf plans IPv4 sysctls of a device (or ConfAll).
type SetConf struct {
	Dev  string
	Conf DevConf
}

// Apply makes the changes in order. On error the model may hold the changes
// before the failing one; apply to a Clone to keep the original.
func (m *Model) Apply(changes ...Change) error {
	defer func() { m.idx = nil }()
	for i, c := range changes {
		if err := c.apply(m); err != nil {
			return fmt.Errorf("change %d: %w", i+1, err)
		}
	}
	return nil
}

func (c AddLink) apply(m *Model) error {
	l := c.Link
	if l.Name == "" {
		return errors.New("add link: empty name")
	}
	if _, ok := m.Link(l.Name); ok {
		return fmt.Errorf("add link %s: exists", l.Name)
	}
	if l.Kind == "" {
		l.Kind = KindOther
	}
	if l.Index == 0 {
		for _, o := range m.st.Links {
			l.Index = max(l.Index, o.Index)
		}
		l.Index++
	} else if _, ok := m.LinkByIndex(l.Index); ok {
		return fmt.Errorf("add link %s: index %d in use", l.Name, l.Index)
	}
	m.st.Links = append(m.st.Links, l)
	return nil
}

func (c AddAddress) apply(m *Model) error {
	a := c.Address
	if !a.Prefix.IsValid() {
		return fmt.Errorf("add address on %s: invalid prefix", a.Link)
	}
	dev, ok := m.Link(a.Link)
	if !ok {
		return fmt.Errorf("add address %s: no device %q", a.Prefix, a.Link)
	}
	for _, o := range m.st.Addrs {
		if o.Prefix.Addr() == a.Prefix.Addr() && o.Link == a.Link {
			return fmt.Errorf("add address %s dev %s: exists", a.Prefix, a.Link)
		}
	}
	if a.Prefix.Addr().Is4() {
		return m.addAddr4(dev, a)
	}
	return m.addAddr6(dev, a)
}

// addAddr4 adds an IPv4 address as iproute2 and the kernel do: loopback
// addresses get host scope, an address in the subnet of a primary becomes
// secondary, primaries are kept narrowest scope first (host before link
// before global, as __inet_insert_ifa orders them), and fib_add_ifaddr adds the
// local route, the prefix route (itself local on the loopback device) and
// the subnet broadcast route, all with the primary address as source.
func (m *Model) addAddr4(dev Link, a Address) error {
	addr := a.Prefix.Addr()
	if a.Scope == ScopeUniverse && loopbackNet4.Contains(addr) {
		a.Scope = ScopeHost
	}
	prim := a
	for _, o := range m.st.Addrs {
		if o.Link == a.Link && !o.Secondary && o.Prefix.Addr().Is4() && o.Prefix.Bits() == a.Prefix.Bits() && o.Prefix.Masked() == a.Prefix.Masked() {
			a.Secondary = true
			prim = o
			break
		}
	}
	pos := len(m.st.Addrs)
	if !a.Secondary {
		// Insert after the last primary of the device whose scope is at
		// least as narrow, else before the device's first address.
		first, last := -1, -1
		for i, o := range m.st.Addrs {
			if o.Link != a.Link || !o.Prefix.Addr().Is4() {
				continue
			}
			if first < 0 {
				first = i
			}
			if !o.Secondary && o.Scope >= a.Scope {
				last = i
			}
		}
		switch {
		case last >= 0:
			pos = last + 1
		case first >= 0:
			pos = first
		}
	}
	m.st.Addrs = slices.Insert(m.st.Addrs, pos, a)
	for _, r := range kernelRoutes4(dev, a, prim.Prefix.Addr()) {
		m.addKernelRoute(r)
	}
	return nil
}

// kernelRoutes4 returns the routes fib_add_ifaddr adds for an IPv4
// address a on dev whose primary address is src: the local route, and on
// an up device and for a primary address the prefix route (itself local
// on the loopback device) and the subnet broadcast route. A route other
// than local through a device without carrier is linkdown (fib_check_nh);
// a local route has no next-hop scope to flag.
func kernelRoutes4(dev Link, a Address, src netip.Addr) []Route {
	addr := a.Prefix.Addr()
	kernel := func(t RouteType, dst netip.Prefix) Route {
		table, scope := TableLocal, ScopeHost
		if t == TypeUnicast {
			table = TableMain
		}
		if t != TypeLocal {
			scope = ScopeLink
		}
		down := dev.Up && !dev.Carrier && dev.Kind != KindLoopback && t != TypeLocal
		return Route{Family: V4, Table: table, Type: t, Dst: dst, Scope: scope, Protocol: "kernel", PrefSrc: src, NextHops: []NextHop{{Link: dev.Name, LinkDown: down}}}
	}
	routes := []Route{kernel(TypeLocal, netip.PrefixFrom(addr, 32))}
	prefix := a.Prefix.Masked()
	if !dev.Up || zeroNet4.Contains(prefix.Addr()) || a.Secondary || (prefix.Addr() == addr && a.Prefix.Bits() == 32) {
		return routes
	}
	if !a.NoPrefixRoute {
		t := TypeUnicast
		if dev.Kind == KindLoopback {
			t = TypeLocal
		}
		routes = append(routes, kernel(t, prefix))
	}
	if a.Prefix.Bits() < 31 {
		routes = append(routes, kernel(TypeBroadcast, netip.PrefixFrom(netipx.LastAddr(prefix), 32)))
	}
	return routes
}

// addAddr6 adds an IPv6 address as addrconf does: the address goes before
// the device's addresses of the same or a wider scope (newest first), a
// local route goes in table local (metric 0) and, on an up device and
// unless noprefixroute, a prefix route in main (metric 256; for a /128
// too). Duplicate address detection is not modelled: the address is usable
// at once, as with `nodad`.
func (m *Model) addAddr6(dev Link, a Address) error {
	addr := a.Prefix.Addr()
	if a.Scope == ScopeUniverse {
		switch {
		case addr == netip.IPv6Loopback():
			a.Scope = ScopeHost
		case linkLocal6.Contains(addr):
			a.Scope = ScopeLink
		}
	}
	pos := len(m.st.Addrs)
	for i, o := range m.st.Addrs {
		if o.Link == a.Link && o.Prefix.Addr().Is6() && scopeRank6(o.Scope) <= scopeRank6(a.Scope) {
			pos = i
			break
		}
	}
	m.st.Addrs = slices.Insert(m.st.Addrs, pos, a)
	for _, r := range m.kernelRoutes6(dev, a) {
		m.addKernelRoute(r)
	}
	return nil
}

// kernelRoutes6 returns the routes addrconf adds for an IPv6 address a on
// dev: the local route (table local, metric 0) and, on an up device, the
// prefix route unless noprefixroute (main, metric 256, linkdown without
// carrier) and, while IPv6 forwarding is on, the subnet-router anycast
// route of a prefix shorter than /127 (addrconf_join_anycast).
func (m *Model) kernelRoutes6(dev Link, a Address) []Route {
	routes := []Route{{Family: V6, Table: TableLocal, Type: TypeLocal, Dst: netip.PrefixFrom(a.Prefix.Addr(), 128), Protocol: "kernel", NextHops: []NextHop{{Link: dev.Name}}}}
	if !dev.Up {
		return routes
	}
	if !a.NoPrefixRoute {
		down := !dev.Carrier && dev.Kind != KindLoopback
		routes = append(routes, Route{Family: V6, Table: TableMain, Type: TypeUnicast, Dst: a.Prefix.Masked(), Protocol: "kernel", Metric: 256, NextHops: []NextHop{{Link: dev.Name, LinkDown: down}}})
	}
	if r, ok := anycastRoute6(a); ok && m.st.Forwarding6 {
		routes = append(routes, r)
	}
	return routes
}

// anycastRoute6 returns the subnet-router anycast route of an IPv6
// address: its subnet's first address, answered by this host while
// forwarding is on. Addresses of /127 and /128 and IPv4-mapped ones have
// none.
func anycastRoute6(a Address) (Route, bool) {
	p := a.Prefix
	if !p.Addr().Is6() || p.Addr().Is4In6() || p.Bits() >= 127 || p.Addr() == netip.IPv6Loopback() {
		return Route{}, false
	}
	return Route{Family: V6, Table: TableLocal, Type: TypeAnycast, Dst: netip.PrefixFrom(p.Masked().Addr(), 128),
		Protocol: "kernel", NextHops: []NextHop{{Link: a.Link}}}, true
}

// scopeRank6 orders IPv6 address scopes as the kernel's address list does
// (IFA_SITE 0x40, IFA_LINK 0x20, IFA_HOST 0x10, global 0).
func scopeRank6(s Scope) int {
	switch s {
	case ScopeSite:
		return 0x40
	case ScopeLink:
		return 0x20
	case ScopeHost:
		return 0x10
	}
	return 0
}

// addKernelRoute adds a route unless an identical one exists (the kernel
// adds a local or broadcast route once however many addresses ask for it).
func (m *Model) addKernelRoute(r Route) {
	if slices.ContainsFunc(m.st.Routes, func(o Route) bool { return sameKernelRoute(&o, &r) }) {
		return
	}
	m.st.Routes = append(m.st.Routes, r)
}

// sameKernelRoute reports whether two routes are the same kernel route:
// family, table, type, destination, device and metric.
func sameKernelRoute(a, b *Route) bool {
	return a.Family == b.Family && a.Table == b.Table && a.Type == b.Type && a.Dst == b.Dst && a.Dev() == b.Dev() && a.Metric == b.Metric
}

func (c AddRoute) apply(m *Model) error {
	r := c.Route
	if !r.Dst.IsValid() {
		return errors.New("add route: invalid destination")
	}
	r.Dst = r.Dst.Masked()
	if r.Family == 0 {
		r.Family = FamilyOf(r.Dst.Addr())
	}
	if r.Table == TableUnspec {
		r.Table = TableMain
		if r.Type == TypeLocal || r.Type == TypeBroadcast {
			r.Table = TableLocal
		}
	}
	if r.Type == TypeUnspec {
		r.Type = TypeUnicast
	}
	if r.Scope == ScopeUniverse && r.Family == V4 {
		switch {
		case r.Type == TypeLocal:
			r.Scope = ScopeHost
		case r.Type == TypeBroadcast || r.Type == TypeMulticast ||
			r.Type == TypeUnicast && len(r.NextHops) > 0 && !r.NextHops[0].Gateway.IsValid():
			r.Scope = ScopeLink
		}
	}
	if r.Family == V6 && r.Metric == 0 && r.Type != TypeLocal {
		r.Metric = 1024
	}
	names := make(map[string]bool, len(m.st.Links))
	for _, l := range m.st.Links {
		names[l.Name] = true
	}
	if err := m.validateRoute(&r, names); err != nil {
		return fmt.Errorf("add route: %w", err)
	}
	for _, o := range m.st.Routes {
		if o.Family == r.Family && o.Table == r.Table && o.Dst == r.Dst && o.TOS == r.TOS && o.Metric == r.Metric && r.Family == V4 {
			return fmt.Errorf("add route %s: exists (%s)", &r, &o)
		}
	}
	m.st.Routes = append(m.st.Routes, r)
	return nil
}

func (c AddRule) apply(m *Model) error {
	r := c.Rule
	if r.Family == 0 {
		r.Family = V4
	}
	if r.Mark != 0 && r.Mask == 0 {
		r.Mask = 0xffffffff
	}
	if err := validateRule(&r); err != nil {
		return fmt.Errorf("add rule: %w", err)
	}
	m.st.Rules = append(m.st.Rules, r)
	if r.Family == V4 {
		m.st.Unmerged = true
	}
	return nil
}

func (c SetConf) apply(m *Model) error {
	if c.Dev != ConfAll {
		if _, ok := m.Link(c.Dev); !ok {
			return fmt.Errorf("set sysctl: no device %q", c.Dev)
		}
	}
	if m.st.Conf == nil {
		m.st.Conf = make(map[string]DevConf)
	}
	m.st.Conf[c.Dev] = c.Conf
	return nil
}
