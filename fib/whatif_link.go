package fib

import (
	"fmt"
	"slices"
)

// LinkUp plans `ip link set NAME up`, with the device's carrier as the
// model holds it (set it first with Carrier; the loopback device always
// has one). The kernel adds the prefix and broadcast routes of the
// device's IPv4 addresses (fib_add_ifaddr on NETDEV_UP) and the routes of
// its IPv6 addresses (addrconf's fixup_permanent_addr), and revives next
// hops through it (fib_sync_up). Link-local IPv6 addresses are not
// generated, as with `addrgenmode none`.
type LinkUp struct{ Name string }

// LinkDown plans `ip link set NAME down`. The kernel (fib_sync_down_dev,
// fib6_ifdown) marks next hops through the device dead and deletes the
// routes left without a live one, except IPv4 local routes, which stay;
// nexthop objects lose their members on it. The device's IPv4 addresses
// stay, its IPv6 addresses go (keep_addr_on_down=0, the default).
type LinkDown struct{ Name string }

// Carrier plans a change of a device's carrier (IFF_LOWER_UP), as a veth
// sees when its peer goes down or up, or a bridge when it gains its first
// port. On an up device, losing it flags the next hops through the device
// linkdown except those of local (and the kernel's anycast) routes, and
// nexthop objects lose their members on it; regaining it clears the flag.
type Carrier struct {
	Name string
	On   bool
}

// SetForwarding plans net.ipv4.ip_forward (Family V4: forwarding on for
// all and for every device, as inet_forward_change does) or
// net.ipv6.conf.all.forwarding (V6: the subnet-router anycast routes of
// every IPv6 address of an up device join or leave table local).
type SetForwarding struct {
	Family Family
	On     bool
}

func (c LinkUp) apply(m *Model) error {
	l := m.link(c.Name)
	if l == nil {
		return fmt.Errorf("link set %s up: no such device", c.Name)
	}
	if l.Up {
		return nil
	}
	l.Up = true
	if l.Kind == KindLoopback {
		l.Carrier = true
	}
	dev := *l
	for _, a := range m.st.Addrs {
		if a.Link != dev.Name {
			continue
		}
		routes := m.kernelRoutes6(dev, a)
		if a.Prefix.Addr().Is4() {
			routes = kernelRoutes4(dev, a, m.primaryOf(a).Prefix.Addr())
		}
		for _, r := range routes {
			m.addKernelRoute(r)
		}
	}
	m.eachHopOn(dev.Name, func(r *Route, nh *NextHop) bool {
		nh.Dead = false
		nh.LinkDown = nh.LinkDown && !dev.Carrier
		return true
	})
	return nil
}

func (c LinkDown) apply(m *Model) error {
	l := m.link(c.Name)
	if l == nil {
		return fmt.Errorf("link set %s down: no such device", c.Name)
	}
	if !l.Up {
		return nil
	}
	l.Up = false
	m.eachHopOn(c.Name, func(r *Route, nh *NextHop) bool {
		if r.Family == V4 && r.Type == TypeLocal {
			return true
		}
		nh.Dead, nh.LinkDown = true, true
		return r.NHID == 0
	})
	m.dropDeadRoutes()
	m.st.Addrs = slices.DeleteFunc(m.st.Addrs, func(a Address) bool { return a.Link == c.Name && a.Prefix.Addr().Is6() })
	return nil
}

func (c Carrier) apply(m *Model) error {
	l := m.link(c.Name)
	if l == nil {
		return fmt.Errorf("carrier of %s: no such device", c.Name)
	}
	if l.Carrier == c.On {
		return nil
	}
	l.Carrier = c.On
	if !l.Up {
		return nil
	}
	m.eachHopOn(c.Name, func(r *Route, nh *NextHop) bool {
		if r.Type == TypeLocal || (r.Family == V6 && r.Type == TypeAnycast && r.Protocol == "kernel") {
			return true
		}
		nh.LinkDown = !c.On
		return c.On || r.NHID == 0
	})
	m.dropDeadRoutes()
	return nil
}

// eachHopOn calls f for every next hop through the device; f reports
// false to drop the next hop (a member of a nexthop object the kernel
// deletes).
func (m *Model) eachHopOn(dev string, f func(r *Route, nh *NextHop) bool) {
	for i := range m.st.Routes {
		r := &m.st.Routes[i]
		if !slices.ContainsFunc(r.NextHops, func(nh NextHop) bool { return nh.Link == dev }) {
			continue
		}
		hops := r.NextHops[:0:0]
		for j := range r.NextHops {
			nh := r.NextHops[j]
			if nh.Link != dev || f(r, &nh) {
				hops = append(hops, nh)
			}
		}
		r.NextHops = hops
	}
}

// dropDeadRoutes deletes the routes that have no next hop left alive
// (fib_flush; a nexthop object without members) but keeps those that
// never had one (blackhole, unreachable ...).
func (m *Model) dropDeadRoutes() {
	m.st.Routes = slices.DeleteFunc(m.st.Routes, func(r Route) bool {
		if !r.routesTraffic() {
			return false
		}
		return !slices.ContainsFunc(r.NextHops, func(nh NextHop) bool { return !nh.Dead })
	})
}

func (c SetForwarding) apply(m *Model) error {
	if c.Family == V6 {
		m.setForwarding6(c.On)
		return nil
	}
	if m.st.Conf == nil {
		m.st.Conf = make(map[string]DevConf)
	}
	for _, n := range append([]string{ConfAll}, linkNames(m.st.Links)...) {
		conf := m.st.Conf[n]
		conf.Forwarding = c.On
		m.st.Conf[n] = conf
	}
	return nil
}

func linkNames(links []Link) []string {
	names := make([]string, len(links))
	for i, l := range links {
		names[i] = l.Name
	}
	return names
}

// setForwarding6 joins (or leaves) the subnet-router anycast address of
// every IPv6 address of an up device (addrconf_join_anycast,
// addrconf_leave_anycast).
func (m *Model) setForwarding6(on bool) {
	if m.st.Forwarding6 == on {
		return
	}
	m.st.Forwarding6 = on
	for _, a := range m.st.Addrs {
		r, ok := anycastRoute6(a)
		if l, up := m.Link(a.Link); !ok || !up || !l.Up {
			continue
		}
		if on {
			m.addKernelRoute(r)
			continue
		}
		m.st.Routes = slices.DeleteFunc(m.st.Routes, func(o Route) bool { return sameKernelRoute(&o, &r) })
	}
}
