package iproute

import (
	"errors"
	"io/fs"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/fibguard/fibguard/fib"
)

// The golden dumps under testdata were made by testdata/mkgolden.sh on
// iproute2 6.1 and Linux 6.18; the script says what each namespace holds.

func readDump(t testing.TB, dir string) Dump {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", dir, name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		return b
	}
	return Dump{
		Links:   read("links.json"),
		Addrs:   read("addrs.json"),
		Routes4: read("routes4.json"),
		Routes6: read("routes6.json"),
		Rules4:  read("rules4.json"),
		Rules6:  read("rules6.json"),
	}
}

func parseDump(t testing.TB, dir string) *fib.Model {
	t.Helper()
	m, err := Parse(readDump(t, dir))
	if err != nil {
		t.Fatalf("Parse(%s): %v", dir, err)
	}
	return m
}

var (
	pfx  = netip.MustParsePrefix
	addr = netip.MustParseAddr
)

func dev(name string) []fib.NextHop { return []fib.NextHop{{Link: name}} }

func via(gw, name string) []fib.NextHop {
	return []fib.NextHop{{Link: name, Gateway: addr(gw)}}
}

func TestGoldenRoutes(t *testing.T) {
	m := parseDump(t, "full")
	if got, want := len(m.State().Routes), 93; got != want {
		t.Errorf("got %d routes, want %d", got, want)
	}
	v4 := func(r fib.Route) fib.Route {
		r.Family = fib.V4
		return r
	}
	v6 := func(r fib.Route) fib.Route {
		r.Family = fib.V6
		return r
	}
	tests := []struct {
		name string
		want fib.Route
	}{
		{"kernel loopback route", v4(fib.Route{Table: fib.TableLocal, Type: fib.TypeLocal, Dst: pfx("127.0.0.0/8"), Scope: fib.ScopeHost, Protocol: "kernel", PrefSrc: addr("127.0.0.1"), NextHops: dev("lo")})},
		{"local route of 127.16.0.1/16", v4(fib.Route{Table: fib.TableLocal, Type: fib.TypeLocal, Dst: pfx("127.16.0.0/16"), Scope: fib.ScopeHost, Protocol: "kernel", PrefSrc: addr("127.16.0.1"), NextHops: dev("lo")})},
		{"local host route of a secondary", v4(fib.Route{Table: fib.TableLocal, Type: fib.TypeLocal, Dst: pfx("10.0.0.11/32"), Scope: fib.ScopeHost, Protocol: "kernel", PrefSrc: addr("10.0.0.10"), NextHops: dev("veth0")})},
		{"kernel broadcast", v4(fib.Route{Table: fib.TableLocal, Type: fib.TypeBroadcast, Dst: pfx("10.0.0.255/32"), Scope: fib.ScopeLink, Protocol: "kernel", PrefSrc: addr("10.0.0.10"), NextHops: dev("veth0")})},
		{"default route", v4(fib.Route{Table: fib.TableMain, Type: fib.TypeUnicast, Dst: pfx("0.0.0.0/0"), Metric: 100, Protocol: "boot", NextHops: via("10.0.0.1", "veth0")})},
		{"connected route", v4(fib.Route{Table: fib.TableMain, Type: fib.TypeUnicast, Dst: pfx("10.0.0.0/24"), Scope: fib.ScopeLink, Protocol: "kernel", PrefSrc: addr("10.0.0.10"), NextHops: dev("veth0")})},
		{"static with metric", v4(fib.Route{Table: fib.TableMain, Type: fib.TypeUnicast, Dst: pfx("10.1.0.0/16"), Metric: 50, Protocol: "static", NextHops: via("10.0.0.2", "veth0")})},
		{"peer route of a point-to-point address", v4(fib.Route{Table: fib.TableMain, Type: fib.TypeUnicast, Dst: pfx("10.9.0.2/32"), Scope: fib.ScopeLink, Protocol: "kernel", PrefSrc: addr("10.9.0.1"), NextHops: []fib.NextHop{{Link: "veth2", LinkDown: true}}})},
		{"tos", v4(fib.Route{Table: 10, Type: fib.TypeUnicast, Dst: pfx("10.2.0.0/16"), TOS: 0x10, Protocol: "boot", NextHops: via("10.0.0.3", "veth0")})},
		{"tos printed as DSCP name CS1", v4(fib.Route{Table: 70, Type: fib.TypeUnicast, Dst: pfx("10.70.0.0/16"), TOS: 0x20, Scope: fib.ScopeLink, Protocol: "boot", NextHops: dev("veth0")})},
		{"onlink", v4(fib.Route{Table: 10, Type: fib.TypeUnicast, Dst: pfx("10.3.0.0/16"), Protocol: "boot", NextHops: []fib.NextHop{{Link: "veth0", Gateway: addr("192.0.2.1"), OnLink: true}}})},
		{"multipath", v4(fib.Route{Table: 20, Type: fib.TypeUnicast, Dst: pfx("10.4.0.0/16"), Protocol: "boot", NextHops: []fib.NextHop{
			{Link: "veth0", Gateway: addr("10.0.0.5"), Weight: 2},
			{Link: "veth0", Gateway: addr("10.0.0.6"), Weight: 1},
		}})},
		{"multipath with a dead next hop", v4(fib.Route{Table: 60, Type: fib.TypeUnicast, Dst: pfx("10.45.0.0/16"), Protocol: "boot", NextHops: []fib.NextHop{
			{Link: "veth0", Gateway: addr("10.0.0.7"), Weight: 1},
			{Link: "veth4", Gateway: addr("10.44.0.2"), Weight: 1, Dead: true, LinkDown: true},
		}})},
		{"blackhole", v4(fib.Route{Table: 20, Type: fib.TypeBlackhole, Dst: pfx("10.5.0.0/16"), Protocol: "boot"})},
		{"unreachable with metric", v4(fib.Route{Table: 20, Type: fib.TypeUnreachable, Dst: pfx("10.6.0.0/16"), Metric: 10, Protocol: "boot"})},
		{"prohibit", v4(fib.Route{Table: 20, Type: fib.TypeProhibit, Dst: pfx("10.7.0.0/16"), Protocol: "boot"})},
		{"throw", v4(fib.Route{Table: 20, Type: fib.TypeThrow, Dst: pfx("10.8.0.0/16"), Protocol: "boot"})},
		{"local in a custom table", v4(fib.Route{Table: 30, Type: fib.TypeLocal, Dst: pfx("10.20.0.1/32"), Scope: fib.ScopeHost, Protocol: "boot", NextHops: dev("veth0")})},
		{"broadcast with src", v4(fib.Route{Table: 30, Type: fib.TypeBroadcast, Dst: pfx("10.20.0.255/32"), Scope: fib.ScopeLink, Protocol: "boot", PrefSrc: addr("10.0.0.10"), NextHops: dev("veth0")})},
		{"anycast", v4(fib.Route{Table: 30, Type: fib.TypeAnycast, Dst: pfx("10.20.1.0/32"), Scope: fib.ScopeLink, Protocol: "boot", NextHops: dev("veth0")})},
		{"multicast", v4(fib.Route{Table: 30, Type: fib.TypeMulticast, Dst: pfx("224.1.0.0/16"), Scope: fib.ScopeLink, Protocol: "boot", NextHops: dev("veth0")})},
		{"linkdown", v4(fib.Route{Table: 40, Type: fib.TypeUnicast, Dst: pfx("10.30.0.0/16"), Scope: fib.ScopeLink, Protocol: "boot", PrefSrc: addr("10.9.0.1"), NextHops: []fib.NextHop{{Link: "veth2", LinkDown: true}}})},
		{"numeric scope and named protocol", v4(fib.Route{Table: 70, Type: fib.TypeUnicast, Dst: pfx("10.72.0.0/16"), Scope: 100, Protocol: "openr", NextHops: dev("veth0")})},
		{"IPv6 gateway of an IPv4 route", v4(fib.Route{Table: 70, Type: fib.TypeUnicast, Dst: pfx("10.74.0.0/16"), Protocol: "boot", NextHops: via("fe80::1", "veth0")})},
		{"nexthop object", v4(fib.Route{Table: 70, Type: fib.TypeUnicast, Dst: pfx("10.75.0.0/16"), Protocol: "boot", NHID: 1, NextHops: via("10.0.0.1", "veth0")})},
		{"nexthop object group", v4(fib.Route{Table: 70, Type: fib.TypeUnicast, Dst: pfx("10.76.0.0/16"), Protocol: "boot", NHID: 3, NextHops: []fib.NextHop{
			{Link: "veth0", Gateway: addr("10.0.0.1"), Weight: 1},
			{Link: "veth0", Gateway: addr("10.0.0.2"), Weight: 1},
		}})},
		{"blackhole nexthop object", v4(fib.Route{Table: 70, Type: fib.TypeBlackhole, Dst: pfx("10.79.0.0/16"), Protocol: "boot", NHID: 5, NextHops: dev("lo")})},
		{"largest metric", v4(fib.Route{Table: 70, Type: fib.TypeUnicast, Dst: pfx("10.77.0.0/16"), Scope: fib.ScopeLink, Metric: math.MaxUint32, Protocol: "boot", NextHops: dev("veth0")})},
		{"largest table", v4(fib.Route{Table: math.MaxUint32, Type: fib.TypeUnicast, Dst: pfx("10.78.0.0/16"), Scope: fib.ScopeLink, Protocol: "boot", NextHops: dev("veth0")})},
		{"IPv6 default", v6(fib.Route{Table: fib.TableMain, Type: fib.TypeUnicast, Dst: pfx("::/0"), Metric: 1024, Protocol: "boot", NextHops: via("2001:db8:1::1", "veth0")})},
		{"IPv6 source route", v6(fib.Route{Table: fib.TableMain, Type: fib.TypeUnicast, Dst: pfx("2001:db8:101::/48"), Src: pfx("2001:db8:1::/64"), Metric: 1024, Protocol: "boot", NextHops: via("2001:db8:1::3", "veth0")})},
		{"IPv6 multipath", v6(fib.Route{Table: 20, Type: fib.TypeUnicast, Dst: pfx("2001:db8:102::/48"), Metric: 1024, Protocol: "boot", NextHops: []fib.NextHop{
			{Link: "veth0", Gateway: addr("2001:db8:1::5"), Weight: 3},
			{Link: "br0", Gateway: addr("fe80::1"), Weight: 1},
		}})},
		{"IPv6 blackhole keeps dev lo", v6(fib.Route{Table: 20, Type: fib.TypeBlackhole, Dst: pfx("2001:db8:103::/48"), Metric: 1024, Protocol: "boot", NextHops: dev("lo")})},
		{"IPv6 throw", v6(fib.Route{Table: 20, Type: fib.TypeThrow, Dst: pfx("2001:db8:106::/48"), Metric: 1024, Protocol: "boot", NextHops: dev("lo")})},
		{"IPv6 onlink", v6(fib.Route{Table: 40, Type: fib.TypeUnicast, Dst: pfx("2001:db8:110::/48"), Metric: 1024, Protocol: "boot", NextHops: []fib.NextHop{{Link: "veth0", Gateway: addr("fe80::2"), OnLink: true}}})},
		{"IPv6 loopback", v6(fib.Route{Table: fib.TableLocal, Type: fib.TypeLocal, Dst: pfx("::1/128"), Protocol: "kernel", NextHops: dev("lo")})},
		{"IPv6 peer route", v6(fib.Route{Table: fib.TableMain, Type: fib.TypeUnicast, Dst: pfx("2001:db8:5::2/128"), Metric: 256, Protocol: "kernel", NextHops: dev("veth0")})},
		{"IPv6 multicast on a link without carrier", v6(fib.Route{Table: fib.TableLocal, Type: fib.TypeMulticast, Dst: pfx("ff00::/8"), Metric: 256, Protocol: "kernel", NextHops: []fib.NextHop{{Link: "veth2", LinkDown: true}}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := findRoute(m, tt.want)
			if got == nil {
				t.Fatalf("no route %s", &tt.want)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

// findRoute finds the route of the model with the family, table, type,
// destination and first device of want.
func findRoute(m *fib.Model, want fib.Route) *fib.Route {
	for i := range m.State().Routes {
		r := &m.State().Routes[i]
		if r.Family == want.Family && r.Table == want.Table && r.Type == want.Type && r.Dst == want.Dst && r.Dev() == want.Dev() {
			return r
		}
	}
	return nil
}

func TestGoldenRules(t *testing.T) {
	m := parseDump(t, "full")
	if !m.Unmerged() {
		t.Error("Unmerged = false with custom rules")
	}
	lookup := func(f fib.Family, prio uint32, table fib.TableID) fib.Rule {
		return fib.Rule{Family: f, Priority: prio, Action: fib.ActionLookup, Table: table, SuppressPrefixLen: -1, SuppressIfGroup: -1}
	}
	with := func(r fib.Rule, change func(*fib.Rule)) fib.Rule {
		change(&r)
		return r
	}
	action := func(f fib.Family, prio uint32, a fib.RuleAction) fib.Rule {
		return fib.Rule{Family: f, Priority: prio, Action: a, SuppressPrefixLen: -1, SuppressIfGroup: -1}
	}
	const v4, v6 = fib.V4, fib.V6
	tests := []struct {
		name string
		want fib.Rule
	}{
		{"default local", lookup(v4, 0, fib.TableLocal)},
		{"from prefix", with(lookup(v4, 100, 10), func(r *fib.Rule) { r.Src = pfx("10.0.0.0/24") })},
		{"to prefix", with(lookup(v4, 101, 20), func(r *fib.Rule) { r.Dst = pfx("10.4.0.0/16") })},
		{"not from host", with(lookup(v4, 102, 30), func(r *fib.Rule) { r.Not, r.Src = true, pfx("10.0.0.10/32") })},
		{"tos", with(lookup(v4, 103, 10), func(r *fib.Rule) { r.TOS = 0x10 })},
		{"fwmark without mask", with(lookup(v4, 104, 20), func(r *fib.Rule) { r.Mark, r.Mask = 0x10, math.MaxUint32 })},
		{"fwmark with mask", with(lookup(v4, 105, 20), func(r *fib.Rule) { r.Mark, r.Mask = 0x20, 0xf0 })},
		{"iif", with(lookup(v4, 106, 30), func(r *fib.Rule) { r.IIF = "veth0" })},
		{"oif", with(lookup(v4, 107, 40), func(r *fib.Rule) { r.OIF = "veth2" })},
		{"uidrange", with(lookup(v4, 108, 10), func(r *fib.Rule) { r.UIDs = &fib.UIDRange{Start: 1000, End: 2000} })},
		{"ipproto name and single dport", with(lookup(v4, 109, 10), func(r *fib.Rule) { r.IPProto, r.DPort = 6, fib.PortRange{Start: 80, End: 80} })},
		{"sport range", with(lookup(v4, 110, 10), func(r *fib.Rule) {
			r.IPProto, r.SPort, r.DPort = 17, fib.PortRange{Start: 1000, End: 2000}, fib.PortRange{Start: 53, End: 53}
		})},
		{"ipproto 47 printed as gre", with(lookup(v4, 111, 10), func(r *fib.Rule) { r.IPProto = 47 })},
		{"suppress_prefixlength", with(lookup(v4, 112, fib.TableMain), func(r *fib.Rule) { r.SuppressPrefixLen = 0 })},
		{"suppress_ifgroup", with(lookup(v4, 113, fib.TableMain), func(r *fib.Rule) { r.SuppressIfGroup = 7 })},
		{"goto", with(action(v4, 114, fib.ActionGoto), func(r *fib.Rule) { r.Goto = 200 })},
		{"nop", action(v4, 115, fib.ActionNop)},
		{"blackhole", with(action(v4, 116, fib.ActionBlackhole), func(r *fib.Rule) { r.Dst = pfx("10.5.0.0/16") })},
		{"unreachable", with(action(v4, 117, fib.ActionUnreachable), func(r *fib.Rule) { r.Dst = pfx("10.6.0.0/16") })},
		{"prohibit", with(action(v4, 118, fib.ActionProhibit), func(r *fib.Rule) { r.Dst = pfx("10.7.0.0/16") })},
		{"not fwmark", with(lookup(v4, 121, 10), func(r *fib.Rule) { r.Not, r.Mark, r.Mask = true, 1, math.MaxUint32 })},
		{"uid 0", with(lookup(v4, 122, fib.TableDefault), func(r *fib.Rule) { r.UIDs = &fib.UIDRange{} })},
		{"detached iif", with(lookup(v4, 124, 10), func(r *fib.Rule) { r.IIF = "nonexist" })},
		{"ipproto without name", with(lookup(v4, 126, 10), func(r *fib.Rule) { r.IPProto = 200 })},
		{"fwmark 0 with mask", with(lookup(v4, 127, 10), func(r *fib.Rule) { r.Mask = 1 })},
		{"to host", with(lookup(v4, 128, 10), func(r *fib.Rule) { r.Dst = pfx("10.0.0.1/32") })},
		{"realms are ignored", lookup(v4, 129, 10)},
		{"both suppressors", with(lookup(v4, 131, 100), func(r *fib.Rule) { r.SuppressPrefixLen, r.SuppressIfGroup = 0, 7 })},
		{"unresolved goto", with(action(v4, 132, fib.ActionGoto), func(r *fib.Rule) { r.Goto = 300 })},
		{"protocol is ignored", lookup(v4, 200, 20)},
		{"default default", lookup(v4, 32767, fib.TableDefault)},
		{"IPv6 from", with(lookup(v6, 100, 10), func(r *fib.Rule) { r.Src = pfx("2001:db8:1::/64") })},
		{"IPv6 fwmark", with(lookup(v6, 102, 20), func(r *fib.Rule) { r.Mark, r.Mask = 0x10, 0xff })},
		{"IPv6 iif and oif", with(lookup(v6, 103, 30), func(r *fib.Rule) { r.IIF, r.OIF = "veth0", "br0" })},
		{"IPv6 goto", with(action(v6, 104, fib.ActionGoto), func(r *fib.Rule) { r.Goto = 106 })},
		{"IPv6 prohibit", action(v6, 105, fib.ActionProhibit)},
		{"IPv6 tos", with(lookup(v6, 107, 10), func(r *fib.Rule) { r.TOS = 0x20 })},
		{"IPv6 ipproto", with(lookup(v6, 108, 10), func(r *fib.Rule) { r.IPProto = 58 })},
		{"IPv6 from host", with(lookup(v6, 110, 10), func(r *fib.Rule) { r.Src = pfx("2001:db8::1/128") })},
		{"IPv6 not to", with(action(v6, 112, fib.ActionUnreachable), func(r *fib.Rule) { r.Not, r.Dst = true, pfx("2001:db8::/32") })},
		{"IPv6 default main", lookup(v6, 32766, fib.TableMain)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *fib.Rule
			for i := range m.State().Rules {
				if r := &m.State().Rules[i]; r.Family == tt.want.Family && r.Priority == tt.want.Priority {
					got = r
				}
			}
			if got == nil {
				t.Fatalf("no rule %d of %s", tt.want.Priority, tt.want.Family)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestGoldenLinks(t *testing.T) {
	m := parseDump(t, "full")
	want := []fib.Link{
		{Index: 1, Name: "lo", Kind: fib.KindLoopback, Up: true, Carrier: true},
		{Index: 2, Name: "br0", Kind: fib.KindBridge, Up: true, Carrier: true, Group: 7},
		{Index: 3, Name: "veth1", Kind: fib.KindVeth, Up: true, Carrier: true, Master: 2},
		{Index: 4, Name: "veth0", Kind: fib.KindVeth, Up: true, Carrier: true},
		{Index: 5, Name: "mac0", Kind: fib.KindOther, Up: true, Carrier: true},
		{Index: 6, Name: "tap0", Kind: fib.KindOther},
		{Index: 7, Name: "veth3", Kind: fib.KindVeth},
		{Index: 8, Name: "veth2", Kind: fib.KindVeth, Up: true},
		{Index: 9, Name: "veth5", Kind: fib.KindVeth},
		{Index: 10, Name: "veth4", Kind: fib.KindVeth},
	}
	if !reflect.DeepEqual(m.State().Links, want) {
		t.Errorf("got  %+v\nwant %+v", m.State().Links, want)
	}
}

func TestGoldenAddrs(t *testing.T) {
	m := parseDump(t, "full")
	tests := []struct {
		name string
		want fib.Address
	}{
		{"IPv4 loopback", fib.Address{Prefix: pfx("127.0.0.1/8"), Link: "lo", Scope: fib.ScopeHost}},
		{"second loopback address", fib.Address{Prefix: pfx("127.16.0.1/16"), Link: "lo", Scope: fib.ScopeHost}},
		{"IPv6 loopback", fib.Address{Prefix: pfx("::1/128"), Link: "lo", Scope: fib.ScopeHost}},
		{"primary, not masked", fib.Address{Prefix: pfx("10.0.0.10/24"), Link: "veth0"}},
		{"secondary", fib.Address{Prefix: pfx("10.0.0.11/24"), Link: "veth0", Secondary: true}},
		{"scope link", fib.Address{Prefix: pfx("10.12.0.1/24"), Link: "veth0", Scope: fib.ScopeLink}},
		{"noprefixroute", fib.Address{Prefix: pfx("10.0.1.1/24"), Link: "br0", NoPrefixRoute: true}},
		{"peer prefix", fib.Address{Prefix: pfx("10.10.0.1/24"), Link: "veth0", Peer: pfx("10.10.0.0/24")}},
		{"peer host", fib.Address{Prefix: pfx("10.9.0.1/32"), Link: "veth2", Peer: pfx("10.9.0.2/32")}},
		{"IPv4 address of a down device", fib.Address{Prefix: pfx("10.44.0.1/24"), Link: "veth4"}},
		{"IPv6 nodad", fib.Address{Prefix: pfx("2001:db8:1::10/64"), Link: "veth0"}},
		{"IPv6 peer", fib.Address{Prefix: pfx("2001:db8:5::1/128"), Link: "veth0", Peer: pfx("2001:db8:5::2/128")}},
		{"IPv6 noprefixroute", fib.Address{Prefix: pfx("2001:db8:6::1/64"), Link: "veth0", NoPrefixRoute: true}},
		{"IPv6 tentative", fib.Address{Prefix: pfx("2001:db8:3::2/64"), Link: "veth2", Tentative: true}},
		{"IPv6 deprecated", fib.Address{Prefix: pfx("2001:db8:3::1/64"), Link: "veth2", Deprecated: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, a := range m.State().Addrs {
				if a.Link == tt.want.Link && a.Prefix == tt.want.Prefix {
					if a != tt.want {
						t.Errorf("got  %+v\nwant %+v", a, tt.want)
					}
					return
				}
			}
			t.Errorf("no address %s on %s", tt.want.Prefix, tt.want.Link)
		})
	}
}

func TestGoldenFresh(t *testing.T) {
	m := parseDump(t, "fresh")
	if m.Unmerged() {
		t.Error("Unmerged = true in a new namespace")
	}
	if want := append(fib.DefaultRules(fib.V4), fib.DefaultRules(fib.V6)...); !reflect.DeepEqual(m.State().Rules, want) {
		t.Errorf("rules: got %+v, want the defaults %+v", m.State().Rules, want)
	}
	wantLinks := []fib.Link{{Index: 1, Name: "lo", Kind: fib.KindLoopback, Up: true, Carrier: true}}
	if !reflect.DeepEqual(m.State().Links, wantLinks) {
		t.Errorf("links: got %+v, want %+v", m.State().Links, wantLinks)
	}
	if len(m.State().Routes) != 4 || len(m.State().Addrs) != 2 {
		t.Errorf("got %d routes and %d addresses, want 4 and 2", len(m.State().Routes), len(m.State().Addrs))
	}
	if m.State().Conf != nil {
		t.Errorf("Conf = %v, want none: sysctls are not in the dumps", m.State().Conf)
	}
}

// TestGoldenVariants checks that the other ways iproute2 prints the same
// namespace give the same model: with names as numbers (-N), and without
// details (-d), where defaults are left out. The dumps without -d carry no
// device kinds, and rules have no -d form, so only routes and addresses are
// compared for them.
func TestGoldenVariants(t *testing.T) {
	full := parseDump(t, "full")
	tests := []struct {
		dir                 string
		sameLinks, hasRules bool
	}{
		{"numeric", true, true},
		{"plain", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			m := parseDump(t, tt.dir)
			if !reflect.DeepEqual(m.State().Routes, full.State().Routes) {
				for i := range min(len(m.State().Routes), len(full.State().Routes)) {
					if !reflect.DeepEqual(m.State().Routes[i], full.State().Routes[i]) {
						t.Errorf("route %d: got %+v, want %+v", i, m.State().Routes[i], full.State().Routes[i])
					}
				}
				t.Fatalf("got %d routes, want %d", len(m.State().Routes), len(full.State().Routes))
			}
			if tt.hasRules && !reflect.DeepEqual(m.State().Rules, full.State().Rules) {
				t.Errorf("rules differ:\ngot  %+v\nwant %+v", m.State().Rules, full.State().Rules)
			}
			if !reflect.DeepEqual(m.State().Addrs, full.State().Addrs) {
				t.Errorf("addresses differ:\ngot  %+v\nwant %+v", m.State().Addrs, full.State().Addrs)
			}
			if tt.sameLinks && !reflect.DeepEqual(m.State().Links, full.State().Links) {
				t.Errorf("links differ:\ngot  %+v\nwant %+v", m.State().Links, full.State().Links)
			}
		})
	}
}

// TestGoldenRouteFamilies checks that `ip route show table all`, which
// lists both families, gives each family its own routes.
func TestGoldenRouteFamilies(t *testing.T) {
	d := readDump(t, "full")
	both4, err := ParseRoutes(d.Routes4, fib.V4)
	if err != nil {
		t.Fatal(err)
	}
	both6, err := ParseRoutes(d.Routes4, fib.V6)
	if err != nil {
		t.Fatal(err)
	}
	only6, err := ParseRoutes(d.Routes6, fib.V6)
	if err != nil {
		t.Fatal(err)
	}
	none4, err := ParseRoutes(d.Routes6, fib.V4)
	if err != nil {
		t.Fatal(err)
	}
	if len(both4) != 54 || len(none4) != 0 {
		t.Errorf("got %d and %d IPv4 routes, want 54 and 0", len(both4), len(none4))
	}
	if !reflect.DeepEqual(both6, only6) {
		t.Errorf("IPv6 routes of the mixed dump differ from the -6 dump:\n%+v\n%+v", both6, only6)
	}
	for _, r := range append(both4, both6...) {
		if fib.FamilyOf(r.Dst.Addr()) != r.Family {
			t.Errorf("route %s has family %s", &r, r.Family)
		}
	}

	// Without the -6 dump, Parse takes the IPv6 routes from the other one.
	full := parseDump(t, "full")
	d.Routes6 = nil
	m, err := Parse(d)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m.State().Routes, full.State().Routes) {
		t.Error("routes from the mixed dump alone differ from those of both dumps")
	}
}

// TestGoldenL3MDev checks the rule a VRF adds, which iproute2 prints with
// no table.
func TestGoldenL3MDev(t *testing.T) {
	d := readDump(t, "l3mdev")
	for _, tt := range []struct {
		b []byte
		f fib.Family
	}{{d.Rules4, fib.V4}, {d.Rules6, fib.V6}} {
		rules, err := ParseRules(tt.b, tt.f)
		if err != nil {
			t.Fatal(err)
		}
		want := fib.Rule{Family: tt.f, Priority: 1000, L3MDev: true, Action: fib.ActionLookup, SuppressPrefixLen: -1, SuppressIfGroup: -1}
		found := false
		for _, r := range rules {
			if r.Priority == 1000 {
				found = true
				if r != want {
					t.Errorf("got  %+v\nwant %+v", r, want)
				}
			}
		}
		if !found {
			t.Errorf("no l3mdev rule of %s", tt.f)
		}
	}
}
