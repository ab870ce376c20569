// Package netgen generates random, seeded network setups and route queries
// for differential tests of the fib model against the kernel: bridges and
// veths up and down; addresses including 127.x, /32s and secondaries;
// routes of every type in several tables with metrics and TOS; multipath
// routes, with their own next hops or through nexthop objects and groups,
// some of whose next hops then lose their device or its carrier; rules
// with selectors and every action; route_localnet and forwarding; merged
// and unmerged tables; both families. A setup is a list of `ip` batch commands
// and sysctls, so a failure can be reproduced by hand.
package netgen

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"

	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/internal/netipx"
)

// Setup is one generated namespace state.
type Setup struct {
	// Sysctls are key=value pairs to set inside the namespace before the
	// commands run (net.ipv6.conf.default.accept_dad=0 among them, so IPv6
	// addresses are never tentative).
	Sysctls []string
	// Commands are `ip -batch` lines. Some may fail (a gateway that is not
	// reachable, a device that is down); the test loads whatever state the
	// kernel ended with, so failures only narrow the setup.
	Commands []string
	// Links are the `ip -batch` lines that create the devices; DevSysctls
	// are set after them and before Commands, because the kernel caches a
	// route's source address when the route is added and does not redo it
	// when route_localnet changes later.
	Links      []string
	DevSysctls []string
	// Devices are the device names the setup creates, for queries.
	Devices []string
}

// Script returns the setup as shell commands for a reproducer.
func (s *Setup) Script(ns string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ip netns add %s\n", ns)
	for _, kv := range s.Sysctls {
		fmt.Fprintf(&b, "ip netns exec %s sysctl -qw %s\n", ns, kv)
	}
	for _, c := range s.Links {
		fmt.Fprintf(&b, "ip -n %s %s\n", ns, c)
	}
	for _, kv := range s.DevSysctls {
		fmt.Fprintf(&b, "ip netns exec %s sysctl -qw %s\n", ns, kv)
	}
	for _, c := range s.Commands {
		fmt.Fprintf(&b, "ip -n %s %s\n", ns, c)
	}
	return b.String()
}

type gen struct {
	r     *rand.Rand
	s     Setup
	devs  []string
	addrs []netip.Prefix // addresses assigned, both families
	nets  []netip.Prefix // prefixes routes point into
	// addrDevs are the devices of addrs.
	addrDevs []string
	// nhid is the last nexthop object id given out.
	nhid int
}

// New generates the setup for a seed.
func New(seed uint64) *Setup {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	g.s.Sysctls = []string{"net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0"}
	g.cmd("link set lo up")
	g.links()
	g.sysctls()
	g.s.Links, g.s.Commands = g.s.Commands, nil
	g.addresses()
	g.routes()
	g.rules()
	// Last, so that the setups of a seed before multipath routes existed
	// keep their commands.
	g.multipath()
	g.s.Devices = g.devs
	return &g.s
}

func (g *gen) cmd(format string, args ...any) {
	g.s.Commands = append(g.s.Commands, fmt.Sprintf(format, args...))
}

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

func (g *gen) pick(xs []string) string { return xs[g.r.IntN(len(xs))] }

func (g *gen) links() {
	nbr := 1 + g.r.IntN(3)
	for i := range nbr {
		name := fmt.Sprintf("br%d", i)
		g.cmd("link add %s type bridge", name)
		g.devs = append(g.devs, name)
	}
	nveth := g.r.IntN(3)
	for i := range nveth {
		a, b := fmt.Sprintf("va%d", i), fmt.Sprintf("vb%d", i)
		g.cmd("link add %s type veth peer name %s", a, b)
		g.devs = append(g.devs, a, b)
		if g.chance(0.4) && nbr > 0 {
			g.cmd("link set %s master br%d", b, g.r.IntN(nbr))
		}
	}
	for _, d := range g.devs {
		if g.chance(0.85) {
			g.cmd("link set %s up", d)
		}
	}
}

var v4Pools = []string{"10.%d.%d.%d", "127.16.%d.%d", "192.168.%d.%d", "172.16.%d.%d"}

func (g *gen) addr4() netip.Addr {
	pool := v4Pools[g.r.IntN(len(v4Pools))]
	var s string
	if strings.Count(pool, "%d") == 3 {
		s = fmt.Sprintf(pool, g.r.IntN(4), g.r.IntN(4), 1+g.r.IntN(254))
	} else {
		s = fmt.Sprintf(pool, g.r.IntN(4), 1+g.r.IntN(254))
	}
	return netip.MustParseAddr(s)
}

func (g *gen) addr6() netip.Addr {
	pools := []string{"2001:db8:%x::%x", "fd00:%x::%x", "2001:db8:%x:1::%x"}
	return netip.MustParseAddr(fmt.Sprintf(pools[g.r.IntN(len(pools))], g.r.IntN(4), 1+g.r.IntN(0xfff)))
}

func (g *gen) addresses() {
	n := 2 + g.r.IntN(6)
	for range n {
		dev := g.pick(g.devs)
		if g.chance(0.7) {
			a := g.addr4()
			bits := []int{8, 16, 24, 24, 24, 28, 30, 31, 32}[g.r.IntN(9)]
			if a.As4()[0] == 127 {
				bits = []int{16, 24, 32}[g.r.IntN(3)]
			}
			p := netip.PrefixFrom(a, bits)
			flags := ""
			if g.chance(0.1) {
				flags = " noprefixroute"
			}
			g.cmd("addr add %s dev %s%s", p, dev, flags)
			g.addrs, g.addrDevs = append(g.addrs, p), append(g.addrDevs, dev)
			g.nets = append(g.nets, p.Masked())
			if g.chance(0.25) && bits < 30 {
				// A second address in the same subnet becomes secondary.
				sec := netip.PrefixFrom(p.Masked().Addr().Next().Next().Next(), bits)
				g.cmd("addr add %s dev %s", sec, dev)
				g.addrs, g.addrDevs = append(g.addrs, sec), append(g.addrDevs, dev)
			}
		} else {
			a := g.addr6()
			bits := []int{64, 64, 48, 128}[g.r.IntN(4)]
			p := netip.PrefixFrom(a, bits)
			g.cmd("addr add %s dev %s nodad", p, dev)
			g.addrs, g.addrDevs = append(g.addrs, p), append(g.addrDevs, dev)
			g.nets = append(g.nets, p.Masked())
		}
	}
}

var tables = []string{"main", "main", "100", "200", "local"}

func (g *gen) routes() {
	n := g.r.IntN(12)
	for range n {
		v6 := g.chance(0.35)
		dst := g.randomPrefix(v6)
		table := g.pick(tables)
		var b strings.Builder
		typ := []string{"unicast", "unicast", "unicast", "unicast", "blackhole", "unreachable", "prohibit", "throw", "local", "broadcast", "anycast", "multicast"}[g.r.IntN(12)]
		if v6 && typ == "broadcast" {
			typ = "unicast"
		}
		fmt.Fprintf(&b, "route add %s %s table %s", typ, dst, table)
		if g.chance(0.3) {
			fmt.Fprintf(&b, " metric %d", []int{10, 100, 1024, 2000}[g.r.IntN(4)])
		}
		if !v6 && g.chance(0.15) {
			fmt.Fprintf(&b, " tos 0x%02x", []int{0x04, 0x08, 0x10, 0x18}[g.r.IntN(4)])
		}
		switch typ {
		case "unicast", "local", "broadcast", "anycast", "multicast":
			dev := g.pick(g.devs)
			if g.chance(0.3) {
				if gw, ok := g.gatewayFor(v6); ok {
					fmt.Fprintf(&b, " via %s", gw)
				}
			}
			fmt.Fprintf(&b, " dev %s", dev)
			if g.chance(0.2) {
				if src, ok := g.localAddr(v6); ok {
					fmt.Fprintf(&b, " src %s", src)
				}
			}
		}
		g.cmd("%s", b.String())
	}
}

// randomPrefix returns a prefix near the setup's own networks, or a
// default route, or a 127.x prefix.
func (g *gen) randomPrefix(v6 bool) netip.Prefix {
	if g.chance(0.1) {
		if v6 {
			return netip.MustParsePrefix("::/0")
		}
		return netip.MustParsePrefix("0.0.0.0/0")
	}
	var base netip.Addr
	for _, p := range g.nets {
		if p.Addr().Is6() == v6 && g.chance(0.5) {
			base = p.Addr()
			break
		}
	}
	if !base.IsValid() {
		if v6 {
			base = g.addr6()
		} else {
			base = g.addr4()
		}
	}
	var bits int
	if v6 {
		bits = []int{32, 48, 56, 64, 96, 120, 128}[g.r.IntN(7)]
	} else {
		bits = []int{8, 12, 16, 20, 24, 26, 28, 32}[g.r.IntN(8)]
	}
	return netip.PrefixFrom(base, bits).Masked()
}

func (g *gen) gatewayFor(v6 bool) (netip.Addr, bool) {
	for _, p := range g.addrs {
		if p.Addr().Is6() == v6 && p.Bits() < 30 {
			return p.Masked().Addr().Next().Next(), true
		}
	}
	return netip.Addr{}, false
}

func (g *gen) localAddr(v6 bool) (netip.Addr, bool) {
	var c []netip.Addr
	for _, p := range g.addrs {
		if p.Addr().Is6() == v6 {
			c = append(c, p.Addr())
		}
	}
	if len(c) == 0 {
		return netip.Addr{}, false
	}
	return c[g.r.IntN(len(c))], true
}

func (g *gen) rules() {
	switch {
	case g.chance(0.35):
		return // merged tables, default rules only
	case g.chance(0.2):
		// A rule added and deleted again: default rules, unmerged tables.
		g.cmd("rule add pref 1000 from 192.0.2.1 lookup 100")
		g.cmd("rule del pref 1000")
		return
	}
	n := 1 + g.r.IntN(4)
	for range n {
		v6 := g.chance(0.3)
		var b strings.Builder
		b.WriteString("rule add")
		prio := 100 + g.r.IntN(300)*100
		fmt.Fprintf(&b, " pref %d", prio)
		if g.chance(0.1) {
			b.WriteString(" not")
		}
		switch {
		case g.chance(0.3):
			fmt.Fprintf(&b, " to %s", g.randomPrefix(v6))
		case v6:
			// Batch lines take no -6: an IPv6 selector makes the rule IPv6.
			b.WriteString(" to ::/0")
		}
		if g.chance(0.2) {
			if src, ok := g.localAddr(v6); ok {
				fmt.Fprintf(&b, " from %s", src)
			}
		}
		if g.chance(0.15) {
			fmt.Fprintf(&b, " fwmark 0x%x", 1+g.r.IntN(3))
		}
		if g.chance(0.15) {
			fmt.Fprintf(&b, " iif %s", g.pick(append([]string{"lo"}, g.devs...)))
		}
		if g.chance(0.1) {
			fmt.Fprintf(&b, " oif %s", g.pick(g.devs))
		}
		if !v6 && g.chance(0.1) {
			fmt.Fprintf(&b, " tos 0x%02x", []int{0x04, 0x08, 0x10}[g.r.IntN(3)])
		}
		if g.chance(0.08) {
			b.WriteString(" uidrange 1000-2000")
		}
		switch g.r.IntN(9) {
		case 0:
			fmt.Fprintf(&b, " goto %d", prio+100+g.r.IntN(5)*100)
		case 1:
			b.WriteString(" nop")
		case 2:
			b.WriteString(" blackhole")
		case 3:
			b.WriteString(" unreachable")
		case 4:
			b.WriteString(" prohibit")
		default:
			fmt.Fprintf(&b, " lookup %s", g.pick([]string{"100", "200", "main", "local", "300"}))
			if g.chance(0.25) {
				fmt.Fprintf(&b, " suppress_prefixlength %d", []int{0, 8, 24}[g.r.IntN(3)])
			}
		}
		g.cmd("%s", b.String())
	}
}

func (g *gen) sysctls() {
	for _, d := range g.devs {
		if g.chance(0.2) {
			g.s.DevSysctls = append(g.s.DevSysctls, fmt.Sprintf("net.ipv4.conf.%s.route_localnet=1", d))
		}
		if g.chance(0.3) {
			g.s.DevSysctls = append(g.s.DevSysctls, fmt.Sprintf("net.ipv4.conf.%s.forwarding=1", d))
		}
		if g.chance(0.3) {
			g.s.DevSysctls = append(g.s.DevSysctls, fmt.Sprintf("net.ipv4.conf.%s.rp_filter=%d", d, 1+g.r.IntN(2)))
		}
	}
}

// Queries returns n queries for a model of the setup: destinations among
// its addresses and their neighbours, its routes, 127.x, multicast,
// broadcast, unrelated addresses; some with a source, an output or input
// device, a mark or a TOS.
func Queries(seed uint64, m *fib.Model, devs []string, n int) []fib.Query {
	r := rand.New(rand.NewPCG(seed, 7))
	var dsts, srcs4, srcs6 []netip.Addr
	for a := range m.Addrs() {
		p := a.Prefix
		dsts = append(dsts, p.Addr(), p.Addr().Next(), p.Masked().Addr())
		if p.Addr().Is4() {
			srcs4 = append(srcs4, p.Addr())
			if p.Bits() < 31 {
				dsts = append(dsts, netipx.LastAddr(p))
			}
		} else {
			srcs6 = append(srcs6, p.Addr())
			dsts = append(dsts, netip.AddrFrom16(p.Addr().As16()).Next())
		}
	}
	var multi []netip.Prefix
	for rt := range m.Routes() {
		dsts = append(dsts, rt.Dst.Addr(), rt.Dst.Addr().Next())
		if len(rt.NextHops) > 1 {
			multi = append(multi, rt.Dst)
		}
	}
	dsts = append(dsts, multipathDsts(r.IntN, multi)...)
	for _, s := range []string{"127.0.0.1", "127.16.0.5", "127.1.2.3", "8.8.8.8", "224.0.0.5", "239.1.1.1", "255.255.255.255", "0.0.0.0", "169.254.1.1",
		"::1", "ff02::1", "ff05::2", "fe80::1", "2001:db8:5::5", "::ffff:10.0.0.1", "::"} {
		dsts = append(dsts, netip.MustParseAddr(s))
	}
	devices := append([]string{"lo"}, devs...)
	qs := make([]fib.Query, 0, n)
	for len(qs) < n {
		q := fib.Query{Dst: dsts[r.IntN(len(dsts))]}
		if q.Dst.Is4In6() && r.IntN(2) == 0 {
			q.Dst = q.Dst.Unmap()
		}
		srcs := srcs4
		if q.Dst.Is6() {
			srcs = srcs6
		}
		switch r.IntN(8) {
		case 0:
			if len(srcs) > 0 {
				q.Src = srcs[r.IntN(len(srcs))]
			}
		case 1:
			q.OIF = devices[r.IntN(len(devices))]
		case 2:
			q.Mark = uint32(1 + r.IntN(3))
		case 3:
			if q.Dst.Is4() {
				q.TOS = []uint8{0x04, 0x08, 0x10}[r.IntN(3)]
			}
		case 4:
			if q.Dst.Is4() {
				q.IIF = devices[r.IntN(len(devices))]
				q.Src = netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(4)), byte(1 + r.IntN(254))})
			}
		}
		qs = append(qs, q)
	}
	return qs
}
