package netgen

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"

	"github.com/fibguard/fibguard/fib"
)

// multipath adds multipath routes: some with their own next hops
// (`nexthop via GW dev DEV weight W ...`, RTA_MULTIPATH), some through
// nexthop objects (`ip nexthop add id N via GW dev DEV`, groups `id G
// group A/B`, routes `nhid G`). Then a device or a veth's peer may go
// down, leaving dead or link-down next hops (and groups that lost
// members), and ignore_routes_with_linkdown may be set.
func (g *gen) multipath() {
	if g.chance(0.3) {
		return
	}
	n := 1 + g.r.IntN(4)
	for range n {
		v6 := g.chance(0.35)
		if g.chance(0.5) {
			g.classicMultipath(v6)
		} else {
			g.groupRoute(v6)
		}
	}
	g.breakLinks()
}

// hopFor returns the words of a next hop of the family: a gateway in a
// subnet of one of the setup's devices, a link-local IPv6 gateway, an
// onlink gateway, or a device alone.
func (g *gen) hopFor(v6 bool) string {
	var cands []string
	for i, p := range g.addrs {
		if p.Addr().Is6() == v6 && p.Bits() < 30 {
			gw := p.Masked().Addr().Next().Next()
			if gw == p.Addr() {
				gw = gw.Next()
			}
			cands = append(cands, fmt.Sprintf("via %s dev %s", gw, g.addrDevs[i]))
		}
	}
	dev := g.pick(g.devs)
	switch {
	case len(cands) > 0 && g.chance(0.6):
		return cands[g.r.IntN(len(cands))]
	case v6 && g.chance(0.5):
		return fmt.Sprintf("via fe80::%x dev %s", 1+g.r.IntN(4), dev)
	case g.chance(0.4):
		if v6 {
			return fmt.Sprintf("via 2001:db8:77::%x dev %s onlink", 1+g.r.IntN(4), dev)
		}
		return fmt.Sprintf("via 10.77.0.%d dev %s onlink", 1+g.r.IntN(4), dev)
	}
	return "dev " + dev
}

// classicMultipath adds a route with two to four next hops of its own.
func (g *gen) classicMultipath(v6 bool) {
	var b strings.Builder
	fmt.Fprintf(&b, "route add %s table %s", g.randomPrefix(v6), g.pick([]string{"main", "main", "100", "200"}))
	if g.chance(0.2) {
		if src, ok := g.localAddr(v6); ok {
			fmt.Fprintf(&b, " src %s", src)
		}
	}
	for range 2 + g.r.IntN(3) {
		fmt.Fprintf(&b, " nexthop %s", g.hopFor(v6))
		if g.chance(0.3) {
			fmt.Fprintf(&b, " weight %d", 1+g.r.IntN(5))
		}
	}
	g.cmd("%s", b.String())
}

// groupRoute adds nexthop objects, mostly grouped, and a route through
// them.
func (g *gen) groupRoute(v6 bool) {
	members := 1 + g.r.IntN(4)
	ids := make([]string, 0, members)
	for range members {
		g.nhid++
		g.cmd("nexthop add id %d %s", g.nhid, g.hopFor(v6))
		id := fmt.Sprint(g.nhid)
		if g.chance(0.3) {
			id += fmt.Sprintf(",%d", 1+g.r.IntN(5))
		}
		ids = append(ids, id)
	}
	use := g.nhid
	if members > 1 || g.chance(0.5) {
		g.nhid++
		g.cmd("nexthop add id %d group %s", g.nhid, strings.Join(ids, "/"))
		use = g.nhid
	}
	g.cmd("route add %s nhid %d table %s", g.randomPrefix(v6), use, g.pick([]string{"main", "main", "100", "200"}))
}

// breakLinks sometimes takes a device, or a veth's peer, down after the
// routes were added: next hops through it become dead, or link-down.
func (g *gen) breakLinks() {
	if g.chance(0.3) {
		kv := "net.ipv4.conf.all.ignore_routes_with_linkdown=1"
		if g.chance(0.5) {
			kv = fmt.Sprintf("net.ipv4.conf.%s.ignore_routes_with_linkdown=1", g.pick(g.devs))
		}
		g.s.DevSysctls = append(g.s.DevSysctls, kv)
	}
	if g.chance(0.3) {
		g.cmd("link set %s down", g.pick(g.devs))
	}
}

// multipathDsts returns addresses spread over the multipath routes of a
// model, so that flows hash onto different next hops.
func multipathDsts(rnd func(int) int, routes []netip.Prefix) []netip.Addr {
	var out []netip.Addr
	for _, p := range routes {
		b := p.Addr().AsSlice()
		for range 4 {
			c := append([]byte(nil), b...)
			for i := p.Bits() / 8; i < len(c); i++ {
				keep := 0
				if i == p.Bits()/8 {
					keep = p.Bits() % 8
				}
				mask := byte(0xff >> keep)
				c[i] = c[i]&^mask | byte(rnd(256))&mask
			}
			a, _ := netip.AddrFromSlice(c)
			out = append(out, a)
		}
	}
	return out
}

// MultipathQueries returns n queries for the multipath routes of a model
// of the setup (none if it has none): destinations spread over each such
// route's prefix, some with a source of the setup's own, an output device,
// or (IPv4) an input device and a source.
func MultipathQueries(seed uint64, m *fib.Model, devs []string, n int) []fib.Query {
	r := rand.New(rand.NewPCG(seed, 11))
	var multi []netip.Prefix
	for rt := range m.Routes() {
		if len(rt.NextHops) > 1 {
			multi = append(multi, rt.Dst)
		}
	}
	dsts := multipathDsts(r.IntN, multi)
	if len(dsts) == 0 {
		return nil
	}
	devices := append([]string{"lo"}, devs...)
	qs := make([]fib.Query, 0, n)
	for len(qs) < n {
		q := fib.Query{Dst: dsts[r.IntN(len(dsts))]}
		switch r.IntN(6) {
		case 0:
			q.Src = ownAddr(r, m, q.Dst.Is4())
		case 1:
			q.OIF = devices[r.IntN(len(devices))]
		case 2:
			if q.Dst.Is4() {
				q.IIF = devices[r.IntN(len(devices))]
				q.Src = netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(4)), byte(1 + r.IntN(254))})
			}
		}
		qs = append(qs, q)
	}
	return qs
}

// ownAddr returns one of the model's addresses of the family, or none.
func ownAddr(r *rand.Rand, m *fib.Model, v4 bool) netip.Addr {
	var c []netip.Addr
	for a := range m.Addrs() {
		if a.Prefix.Addr().Is4() == v4 {
			c = append(c, a.Prefix.Addr())
		}
	}
	if len(c) == 0 {
		return netip.Addr{}
	}
	return c[r.IntN(len(c))]
}
