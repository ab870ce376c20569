package fib

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/fibguard/fibguard/fib/internal/direct"
	"github.com/fibguard/fibguard/fib/internal/fast"
)

// fastModel returns a random IPv4 model in which output lookups often take
// the fast path and often must not: devices up and down with and without
// carrier, route_localnet and ignore_routes_with_linkdown, addresses with
// their kernel routes (127.x, secondaries), routes of every type in
// several tables with TOS, metrics, gateways (some of them local),
// prefsrc, dead and linkdown next hops, several routes per prefix, and
// rules: the merged defaults, the unmerged defaults, extra rules that
// select every flow, and rules with selectors.
func fastModel(r *rand.Rand) (*Model, []netip.Addr) {
	m := NewModel()
	m.st.Links[0].Up = true
	devs := []string{"lo"}
	for i := range 4 {
		name := fmt.Sprintf("d%d", i)
		kind := []LinkKind{KindBridge, KindVeth, KindOther, KindVRF}[r.IntN(4)]
		if err := m.Apply(AddLink{Link: Link{Name: name, Kind: kind, Up: r.IntN(4) > 0, Carrier: r.IntN(3) > 0}}); err != nil {
			panic(err)
		}
		devs = append(devs, name)
		if r.IntN(3) == 0 {
			_ = m.Apply(SetConf{Dev: name, Conf: DevConf{RouteLocalnet: r.IntN(2) == 0, IgnoreRoutesWithLinkdown: r.IntN(2) == 0}})
		}
	}
	addr := func() netip.Addr {
		if r.IntN(5) == 0 {
			return netip.AddrFrom4([4]byte{127, byte(r.IntN(3)), 0, byte(1 + r.IntN(4))})
		}
		return netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(4)), byte(1 + r.IntN(8))})
	}
	var dsts []netip.Addr
	for range 2 + r.IntN(6) {
		a := addr()
		p := netip.PrefixFrom(a, []int{8, 16, 24, 30, 32}[r.IntN(5)])
		_ = m.Apply(AddAddress{Address: Address{Prefix: p, Link: devs[r.IntN(len(devs))], Scope: []Scope{ScopeUniverse, ScopeUniverse, ScopeLink, ScopeHost}[r.IntN(4)]}})
		dsts = append(dsts, a)
	}
	types := []RouteType{TypeUnicast, TypeUnicast, TypeUnicast, TypeLocal, TypeBroadcast, TypeAnycast, TypeMulticast, TypeBlackhole, TypeUnreachable, TypeProhibit, TypeThrow}
	for range 5 + r.IntN(30) {
		p := netip.PrefixFrom(addr(), r.IntN(33)).Masked()
		if r.IntN(6) == 0 {
			p = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(r.IntN(256)), byte(r.IntN(256)), 0, 0}), r.IntN(17)).Masked()
		}
		rt := Route{Family: V4, Dst: p, Type: types[r.IntN(len(types))], Table: []TableID{TableMain, TableMain, TableLocal, TableDefault, 100}[r.IntN(5)],
			Scope: []Scope{ScopeUniverse, ScopeLink, ScopeHost}[r.IntN(3)], Metric: uint32(r.IntN(3))}
		if r.IntN(8) == 0 {
			rt.TOS = []uint8{0x04, 0x08, 0x10}[r.IntN(3)]
		}
		if r.IntN(4) == 0 {
			rt.PrefSrc = addr()
		}
		if rt.routesTraffic() || r.IntN(2) == 0 {
			nhs := 1
			if r.IntN(8) == 0 {
				nhs = 2
			}
			for range nhs {
				nh := NextHop{Link: devs[r.IntN(len(devs))], Dead: r.IntN(10) == 0, LinkDown: r.IntN(4) == 0, OnLink: r.IntN(8) == 0}
				if r.IntN(2) == 0 {
					nh.Gateway = dsts[r.IntN(len(dsts))]
					if r.IntN(2) == 0 {
						nh.Gateway = nh.Gateway.Next()
					}
				}
				rt.NextHops = append(rt.NextHops, nh)
			}
		}
		m.st.Routes = append(m.st.Routes, rt)
		dsts = append(dsts, p.Addr(), p.Addr().Next())
	}
	switch r.IntN(4) {
	case 0:
		m.st.Unmerged = true
	case 1:
		m.st.Unmerged = true
		m.st.Rules = append(m.st.Rules, Rule{Family: V4, Priority: uint32(r.IntN(40000)), Action: ActionLookup, Table: []TableID{100, 101}[r.IntN(2)], SuppressPrefixLen: -1, SuppressIfGroup: -1})
	case 2:
		m.st.Unmerged = true
		m.st.Rules = append(m.st.Rules, Rule{Family: V4, Priority: 100, Action: ActionLookup, Table: 100, Mark: 1, Mask: 1, SuppressPrefixLen: -1, SuppressIfGroup: -1})
	}
	for _, s := range []string{"8.8.8.8", "127.0.0.1", "224.0.0.1", "255.255.255.255", "0.0.0.0", "240.0.0.1", "223.255.255.255", "239.1.2.3", "224.0.0.251", "250.1.1.1"} {
		dsts = append(dsts, netip.MustParseAddr(s))
	}
	m.idx = nil
	return m, dsts
}

// TestFastPathMatchesGeneral compares every answer and trace of the IPv4
// output fast path with those of the general path on random models: with
// the tries of these small tables, and with direct tables built for every
// table of the chain (lookups of /24s with more than one longer prefix
// falling back to the trie).
func TestFastPathMatchesGeneral(t *testing.T) {
	for _, tc := range []struct {
		name           string
		minPrefixes    int
		maxLong        int
		rounds         int
		wantDirectDsts int
	}{
		{name: "trie", minPrefixes: direct.MinPrefixes, maxLong: direct.MaxLong, rounds: 400},
		{name: "direct", minPrefixes: 0, maxLong: 1, rounds: 150, wantDirectDsts: 2000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setDirect4(t, tc.minPrefixes, tc.maxLong)
			r := rand.New(rand.NewPCG(7, 11))
			fast, direct := 0, 0
			for round := range tc.rounds {
				m, dsts := fastModel(r)
				if err := m.Validate(); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				m.Freeze()
				checkDirect4Slots(t, m)
				for range 100 {
					q := Query{Dst: dsts[r.IntN(len(dsts))], NoTrace: r.IntN(2) == 0, TOS: []uint8{0, 0, 0x04, 0x08}[r.IntN(4)], Mark: uint32(r.IntN(2))}
					var scratch Result
					if m.output4Fast(m.idx, q.Dst, &scratch) {
						fast++
					}
					for _, tab := range m.idx.chain4 {
						if tab != nil && tab.Dir4 != nil && answers4(tab.Dir4, q.Dst) {
							direct++
							break
						}
					}
					got, want := fastAndGeneral(t, m, q)
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("round %d, %+v:\nfast    %s %+v\ngeneral %s %+v\nmodel routes %v rules %v", round, q, &got, got, &want, want, m.st.Routes, m.st.Rules)
					}
				}
			}
			if want := tc.rounds * 100 / 8; fast < want {
				t.Errorf("only %d of %d lookups took the fast path", fast, tc.rounds*100)
			}
			if direct < tc.wantDirectDsts {
				t.Errorf("only %d of %d lookups had a direct table to answer them", direct, tc.rounds*100)
			}
			t.Logf("%d of %d lookups took the fast path; %d had a direct table", fast, tc.rounds*100, direct)
		})
	}
}

// answers4 reports whether a direct table answers for dst without the
// trie.
func answers4(dt *direct.Table4[fast.Slot], dst netip.Addr) bool {
	_, _, trie := dt.Lookup(uint4(dst))
	return !trie
}

// reference answers q on the general path alone, the reference that
// Lookup's accelerated paths must agree with.
func (m *Model) reference(q Query) Result {
	res := Result{Dst: q.Dst, noTrace: q.NoTrace}
	m.lookup(m.index(), q, &res)
	return res
}

// fastAndGeneral answers q twice on m: as Lookup does (the fast path where
// it applies) and on the general path alone.
func fastAndGeneral(t *testing.T, m *Model, q Query) (fast, general Result) {
	t.Helper()
	fast, err := m.Lookup(q)
	if err != nil {
		t.Fatal(err)
	}
	general = m.reference(q)
	return fast, general
}

// TestResolveGateways4 compares the resolution of gateways to local
// addresses with a slow reference that walks every route of the tables.
func TestResolveGateways4(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	checked := 0
	for round := range 300 {
		m, _ := fastModel(r)
		ix := m.index()
		for i := range m.st.Routes {
			rt := &m.st.Routes[i]
			e := &ix.entries[i]
			if e.gw4 == 0 || !e.has(flagSingle) || rt.NextHops[0].OnLink {
				continue
			}
			checked++
			want := slowGatewayScope(m, ix.merged, rt, e.dev) == ScopeHost
			if e.has(flagGwLocal) != want {
				t.Fatalf("round %d: route %s: gateway local %t, want %t", round, rt, e.has(flagGwLocal), want)
			}
		}
	}
	t.Logf("%d gateways checked", checked)
}

// slowGatewayScope is fib_check_nh_v4_gw over the model's routes: in the
// route's table (unless main), then local (unless merged into main), then
// main, the longest prefix first, in alias order, the first unicast or
// local route of a scope narrower than the route's through its device.
func slowGatewayScope(m *Model, merged bool, rt *Route, dev *device) Scope {
	tableOf := func(id TableID) TableID {
		if merged && id == TableLocal {
			return TableMain
		}
		return id
	}
	var tables []TableID
	if tableOf(rt.Table) != TableMain {
		tables = append(tables, tableOf(rt.Table))
	}
	if !merged {
		tables = append(tables, TableLocal)
	}
	tables = append(tables, TableMain)
	gw := rt.NextHops[0].Gateway
	ix := m.index()
	for _, id := range tables {
		for bits := 32; bits >= 0; bits-- {
			p := netip.PrefixFrom(gw, bits).Masked()
			var found []*Route
			for i := range m.st.Routes {
				o := &m.st.Routes[i]
				if o.Family == V4 && tableOf(o.Table) == id && o.Dst == p {
					found = append(found, o)
				}
			}
			// stable insertion sort by alias order
			for i := 1; i < len(found); i++ {
				for j := i; j > 0 && aliasOrder(found[j-1], found[j]) > 0; j-- {
					found[j-1], found[j] = found[j], found[j-1]
				}
			}
			for _, o := range found {
				var odev *device
				if len(o.NextHops) > 0 {
					odev = ix.devs[o.NextHops[0].Link]
				}
				if o.Scope <= rt.Scope || (dev != nil && odev != dev) {
					continue
				}
				if o.Type == TypeUnicast || o.Type == TypeLocal {
					return o.Scope
				}
			}
		}
	}
	return ScopeNowhere
}

// fastModel6 is fastModel for IPv6: devices, addresses of every scope
// (some tentative or deprecated) with their kernel routes, routes of every
// type in several tables with metrics, gateways, prefsrc and dead next
// hops, and rules: the defaults, an extra rule that selects every flow,
// or a rule with a selector.
func fastModel6(r *rand.Rand) (*Model, []netip.Addr) {
	m := NewModel()
	m.st.Links[0].Up = true
	devs := []string{"lo"}
	for i := range 3 {
		name := fmt.Sprintf("d%d", i)
		if err := m.Apply(AddLink{Link: Link{Name: name, Kind: KindBridge, Up: r.IntN(4) > 0, Carrier: true}}); err != nil {
			panic(err)
		}
		devs = append(devs, name)
	}
	addr := func() netip.Addr {
		switch r.IntN(6) {
		case 0:
			return netip.MustParseAddr(fmt.Sprintf("fe80::%x", 1+r.IntN(4)))
		case 1:
			return netip.MustParseAddr(fmt.Sprintf("fd00:%x::%x", r.IntN(3), 1+r.IntN(4)))
		case 2:
			return netip.MustParseAddr(fmt.Sprintf("2002:%x::%x", r.IntN(3), 1+r.IntN(4)))
		}
		return netip.MustParseAddr(fmt.Sprintf("2001:db8:%x::%x", r.IntN(4), 1+r.IntN(4)))
	}
	var dsts []netip.Addr
	_ = m.Apply(AddAddress{Address: Address{Prefix: netip.MustParsePrefix("::1/128"), Link: "lo", Scope: ScopeHost}})
	for range 2 + r.IntN(6) {
		a := addr()
		p := netip.PrefixFrom(a, []int{48, 64, 64, 128}[r.IntN(4)])
		_ = m.Apply(AddAddress{Address: Address{Prefix: p, Link: devs[1+r.IntN(len(devs)-1)], Tentative: r.IntN(6) == 0, Deprecated: r.IntN(6) == 0}})
		dsts = append(dsts, a)
	}
	types := []RouteType{TypeUnicast, TypeUnicast, TypeUnicast, TypeLocal, TypeAnycast, TypeMulticast, TypeBlackhole, TypeUnreachable, TypeProhibit, TypeThrow}
	for range 5 + r.IntN(30) {
		p := netip.PrefixFrom(addr(), []int{0, 16, 32, 48, 64, 64, 96, 128}[r.IntN(8)]).Masked()
		rt := Route{Family: V6, Dst: p, Type: types[r.IntN(len(types))], Table: []TableID{TableMain, TableMain, TableLocal, 100}[r.IntN(4)],
			Metric: uint32([]int{256, 1024, 1024, 100}[r.IntN(4)])}
		if r.IntN(3) == 0 {
			rt.Protocol = "kernel"
		}
		if r.IntN(5) == 0 {
			rt.PrefSrc = addr()
		}
		if rt.routesTraffic() || r.IntN(2) == 0 {
			nh := NextHop{Link: devs[r.IntN(len(devs))], Dead: r.IntN(8) == 0}
			if r.IntN(2) == 0 {
				nh.Gateway = addr()
			}
			rt.NextHops = append(rt.NextHops, nh)
		}
		m.st.Routes = append(m.st.Routes, rt)
		dsts = append(dsts, p.Addr(), p.Addr().Next())
	}
	switch r.IntN(3) {
	case 0:
		m.st.Rules = append(m.st.Rules, Rule{Family: V6, Priority: uint32(r.IntN(40000)), Action: ActionLookup, Table: []TableID{100, 101}[r.IntN(2)], SuppressPrefixLen: -1, SuppressIfGroup: -1})
	case 1:
		m.st.Rules = append(m.st.Rules, Rule{Family: V6, Priority: 100, Action: ActionLookup, Table: 100, Mark: 1, Mask: 1, SuppressPrefixLen: -1, SuppressIfGroup: -1})
	}
	for _, s := range []string{"::1", "ff02::1", "ff05::2", "fe80::1", "2001:db8:5::5", "::ffff:10.0.0.1", "::", "2002::1", "fd00::1"} {
		dsts = append(dsts, netip.MustParseAddr(s))
	}
	m.idx = nil
	return m, dsts
}

// TestFastPath6MatchesGeneral is TestFastPathMatchesGeneral for IPv6:
// with the tries, and with direct tables built for every table of the
// chain that has a region.
func TestFastPath6MatchesGeneral(t *testing.T) {
	for _, tc := range []struct {
		name           string
		minPrefixes    int
		maxLong        int
		wantDirectDsts int
	}{
		{name: "trie", minPrefixes: direct.MinPrefixes, maxLong: direct.MaxLong},
		{name: "direct", minPrefixes: 0, maxLong: 1, wantDirectDsts: 5000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setDirect4(t, tc.minPrefixes, tc.maxLong)
			r := rand.New(rand.NewPCG(8, 13))
			fast, direct := 0, 0
			for round := range 400 {
				m, dsts := fastModel6(r)
				if err := m.Validate(); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				m.Freeze()
				checkDirect6Slots(t, m)
				for range 100 {
					q := Query{Dst: dsts[r.IntN(len(dsts))], NoTrace: r.IntN(2) == 0, Mark: uint32(r.IntN(2))}
					var scratch Result
					if m.output6Fast(m.idx, q.Dst, &scratch) {
						fast++
					}
					for _, tab := range m.idx.chain6 {
						if tab != nil && tab.Dir6 != nil && answers(tab.Dir6, q.Dst) {
							direct++
							break
						}
					}
					got, want := fastAndGeneral(t, m, q)
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("round %d, %+v:\nfast    %s %+v\ngeneral %s %+v\nmodel routes %v addrs %v rules %v", round, q, &got, got, &want, want, m.st.Routes, m.st.Addrs, m.st.Rules)
					}
				}
			}
			if fast < 5000 {
				t.Errorf("only %d of 40000 lookups took the fast path", fast)
			}
			if direct < tc.wantDirectDsts {
				t.Errorf("only %d of 40000 lookups had a direct table to answer them", direct)
			}
			t.Logf("%d of 40000 lookups took the fast path; %d had a direct table", fast, direct)
		})
	}
}

// refSelectAddr6 is the straightforward form of selectAddr6: every rule
// compared in turn, over the model's addresses.
func refSelectAddr6(ix *index, dev *device, dst netip.Addr) netip.Addr {
	dstScope := addrScope6(dst)
	onlyDev := dev != nil && (multicast6.Contains(dst) || dstScope <= 2)
	dstLabel := label6(dst)
	var best *Address
	var bestScore [6]int
	consider := func(a *Address) {
		addr := a.Prefix.Addr()
		if a.Tentative || multicast6.Contains(addr) || addr.IsUnspecified() {
			return
		}
		sc := addrScope6(addr)
		scopeRank := -sc
		if sc < dstScope {
			scopeRank = sc - 128
		}
		onDev := 0
		if dev == nil || a.Link == dev.link.Name {
			onDev = 1
		}
		prefix := 0
		x, y := addr.As16(), dst.As16()
		for i := range x {
			if x[i] != y[i] {
				prefix += bits.LeadingZeros8(x[i] ^ y[i])
				break
			}
			prefix += 8
		}
		prefix = min(prefix, a.Prefix.Bits())
		score := [6]int{b2i(addr == dst), scopeRank, b2i(!a.Deprecated || sc <= 2), onDev, b2i(label6(addr) == dstLabel), prefix}
		if best == nil || slices.Compare(score[:], bestScore[:]) > 0 {
			best, bestScore = a, score
		}
	}
	devs := ix.byIndex
	if onlyDev {
		devs = []*device{dev}
	}
	for _, d := range devs {
		for _, a := range d.addr6 {
			consider(a)
		}
	}
	if best == nil {
		return netip.Addr{}
	}
	return best.Prefix.Addr()
}

// TestSelectAddr6 compares selectAddr6 with refSelectAddr6 on random
// models, devices and destinations.
func TestSelectAddr6(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 17))
	for round := range 300 {
		m, dsts := fastModel6(r)
		ix := m.index()
		for range 100 {
			dst := dsts[r.IntN(len(dsts))]
			if r.IntN(4) == 0 {
				dst = dst.WithZone("d1")
			}
			var dev *device
			if k := r.IntN(len(ix.byIndex) + 1); k < len(ix.byIndex) {
				dev = ix.byIndex[k]
			}
			got, want := m.selectAddr6(ix, dev, dst), refSelectAddr6(ix, dev, dst)
			if got != want {
				t.Fatalf("round %d: source for %s via %v: %s, want %s (addresses %v)", round, dst, dev, got, want, m.st.Addrs)
			}
		}
	}
}

// TestAddrScope6 compares addrScope6 with its definition by prefixes.
func TestAddrScope6(t *testing.T) {
	ref := func(a netip.Addr) int {
		switch {
		case a.IsUnspecified():
			return -1
		case a == netip.IPv6Loopback():
			return 2
		case multicast6.Contains(a):
			return int(a.As16()[1] & 0x0f)
		case linkLocal6.Contains(a):
			return 2
		case netip.MustParsePrefix("fec0::/10").Contains(a):
			return 5
		}
		return 14
	}
	for _, s := range []string{"::", "::1", "::1%eth0", "0.0.0.0", "127.0.0.1", "10.0.0.1", "ff02::1", "ff05::2", "ff0e::1", "ff02::1%eth0",
		"fe80::1", "fe80::1%eth0", "febf::1", "fec0::1", "feff::1", "fe00::1", "2001:db8::1", "::ffff:10.0.0.1", "::ffff:0.0.0.0", "fd00::1"} {
		a := netip.MustParseAddr(s)
		if got, want := addrScope6(a), ref(a); got != want {
			t.Errorf("addrScope6(%s) = %d, want %d", s, got, want)
		}
	}
}
