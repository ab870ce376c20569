package fib_test

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/fibguard/fibguard/fib"
)

// whatIfBase is a namespace with lo up (127.0.0.1/8, ::1), an up bridge
// br0 with carrier and a veth va0, up with carrier, each with addresses.
func whatIfBase() []fib.Change {
	addr := func(p, dev string) fib.Change {
		return fib.AddAddress{Address: fib.Address{Prefix: netip.MustParsePrefix(p), Link: dev}}
	}
	return []fib.Change{
		fib.LinkUp{Name: "lo"}, addr("127.0.0.1/8", "lo"), addr("::1/128", "lo"),
		fib.AddLink{Link: fib.Link{Name: "br0", Kind: fib.KindBridge, Up: true, Carrier: true}},
		addr("10.1.2.3/24", "br0"), addr("10.1.2.4/24", "br0"), addr("2001:db8::1/64", "br0"),
		fib.AddLink{Link: fib.Link{Name: "va0", Kind: fib.KindVeth, Up: true, Carrier: true}},
		addr("10.9.0.1/24", "va0"), addr("2001:db8:9::1/64", "va0"),
	}
}

// devRoutes lists the routes of a model through a device as text, in the
// model's order.
func devRoutes(m *fib.Model, dev string) []string {
	var out []string
	for r := range m.Routes() {
		if slices.ContainsFunc(r.NextHops, func(nh fib.NextHop) bool { return nh.Link == dev }) {
			text, _ := r.MarshalText()
			out = append(out, string(text))
		}
	}
	return out
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestWhatIfChanges(t *testing.T) {
	va0 := []fib.NextHop{{Link: "va0"}}
	tests := []struct {
		name    string
		changes []fib.Change
		dev     string
		want    []string
		err     error
	}{
		{"route del by destination", []fib.Change{
			fib.AddRoute{Route: fib.Route{Dst: pfx("172.20.0.0/24"), Metric: 10, NextHops: va0}},
			fib.AddRoute{Route: fib.Route{Dst: pfx("172.20.0.0/24"), Metric: 5, NextHops: va0}},
			fib.DelRoute{Route: fib.Route{Dst: pfx("172.20.0.0/24")}},
		}, "va0", []string{
			"local 10.9.0.1/32 dev va0 table local proto kernel scope host src 10.9.0.1",
			"unicast 10.9.0.0/24 dev va0 table main proto kernel scope link src 10.9.0.1",
			"broadcast 10.9.0.255/32 dev va0 table local proto kernel scope link src 10.9.0.1",
			"local 2001:db8:9::1/128 dev va0 table local proto kernel scope global",
			"unicast 2001:db8:9::/64 dev va0 table main proto kernel scope global metric 256",
			"unicast 172.20.0.0/24 dev va0 table main scope link metric 10",
		}, nil},
		{"route del of a kernel route", []fib.Change{
			fib.DelRoute{Route: fib.Route{Dst: pfx("10.9.0.0/24"), NextHops: va0}},
			fib.DelRoute{Route: fib.Route{Type: fib.TypeBroadcast, Dst: pfx("10.9.0.255/32")}},
			fib.DelRoute{Route: fib.Route{Dst: pfx("2001:db8:9::/64")}},
		}, "va0", []string{
			"local 10.9.0.1/32 dev va0 table local proto kernel scope host src 10.9.0.1",
			"local 2001:db8:9::1/128 dev va0 table local proto kernel scope global",
		}, nil},
		{"route del of none", []fib.Change{fib.DelRoute{Route: fib.Route{Dst: pfx("10.9.0.0/24"), Metric: 7}}}, "", nil, syscall.ESRCH},
		{"addr del of a secondary keeps the subnet's routes", []fib.Change{
			fib.DelAddress{Address: fib.Address{Prefix: pfx("10.1.2.4/24"), Link: "br0"}},
		}, "br0", []string{
			"local 10.1.2.3/32 dev br0 table local proto kernel scope host src 10.1.2.3",
			"unicast 10.1.2.0/24 dev br0 table main proto kernel scope link src 10.1.2.3",
			"broadcast 10.1.2.255/32 dev br0 table local proto kernel scope link src 10.1.2.3",
			"local 2001:db8::1/128 dev br0 table local proto kernel scope global",
			"unicast 2001:db8::/64 dev br0 table main proto kernel scope global metric 256",
		}, nil},
		{"addr del of a primary takes its secondaries and routes naming it", []fib.Change{
			fib.AddRoute{Route: fib.Route{Dst: pfx("172.21.0.0/24"), PrefSrc: netip.MustParseAddr("10.1.2.3"), NextHops: va0}},
			fib.DelAddress{Address: fib.Address{Prefix: pfx("10.1.2.3/24"), Link: "br0"}},
			fib.DelAddress{Address: fib.Address{Prefix: pfx("2001:db8::1/64"), Link: "br0"}},
		}, "br0", nil, nil},
		{"addr del of the last IPv4 address flushes the device's IPv4 routes", []fib.Change{
			fib.AddRoute{Route: fib.Route{Dst: pfx("172.20.0.0/24"), NextHops: va0}},
			fib.DelAddress{Address: fib.Address{Prefix: pfx("10.9.0.1/24"), Link: "va0"}},
		}, "va0", []string{
			"local 2001:db8:9::1/128 dev va0 table local proto kernel scope global",
			"unicast 2001:db8:9::/64 dev va0 table main proto kernel scope global metric 256",
		}, nil},
		{"addr del of none", []fib.Change{fib.DelAddress{Address: fib.Address{Prefix: pfx("10.1.2.3/16"), Link: "br0"}}}, "", nil, syscall.EADDRNOTAVAIL},
		{"link down keeps IPv4 local routes, drops IPv6 addresses", []fib.Change{
			fib.AddRoute{Route: fib.Route{Dst: pfx("172.20.0.0/24"), NextHops: va0}},
			fib.LinkDown{Name: "va0"},
		}, "va0", []string{
			"local 10.9.0.1/32 dev va0 table local proto kernel scope host src 10.9.0.1",
		}, nil},
		{"link down and up again", []fib.Change{fib.LinkDown{Name: "va0"}, fib.LinkUp{Name: "va0"}}, "va0", []string{
			"local 10.9.0.1/32 dev va0 table local proto kernel scope host src 10.9.0.1",
			"unicast 10.9.0.0/24 dev va0 table main proto kernel scope link src 10.9.0.1",
			"broadcast 10.9.0.255/32 dev va0 table local proto kernel scope link src 10.9.0.1",
		}, nil},
		{"multipath next hop dies with its device", []fib.Change{
			fib.AddRoute{Route: fib.Route{Dst: pfx("172.22.0.0/24"), NextHops: []fib.NextHop{
				{Link: "va0", Gateway: netip.MustParseAddr("10.9.0.2")}, {Link: "br0", Gateway: netip.MustParseAddr("10.1.2.9")}}}},
			fib.LinkDown{Name: "va0"},
		}, "br0", []string{
			"local 10.1.2.3/32 dev br0 table local proto kernel scope host src 10.1.2.3",
			"unicast 10.1.2.0/24 dev br0 table main proto kernel scope link src 10.1.2.3",
			"broadcast 10.1.2.255/32 dev br0 table local proto kernel scope link src 10.1.2.3",
			"local 10.1.2.4/32 dev br0 table local proto kernel scope host src 10.1.2.3",
			"local 2001:db8::1/128 dev br0 table local proto kernel scope global",
			"unicast 2001:db8::/64 dev br0 table main proto kernel scope global metric 256",
			"unicast 172.22.0.0/24 table main scope global nexthop via 10.9.0.2 dev va0 weight 1 linkdown dead nexthop via 10.1.2.9 dev br0 weight 1",
		}, nil},
		{"carrier off flags all but local routes", []fib.Change{fib.Carrier{Name: "va0"}}, "va0", []string{
			"local 10.9.0.1/32 dev va0 table local proto kernel scope host src 10.9.0.1",
			"unicast 10.9.0.0/24 dev va0 table main proto kernel scope link src 10.9.0.1 linkdown",
			"broadcast 10.9.0.255/32 dev va0 table local proto kernel scope link src 10.9.0.1 linkdown",
			"local 2001:db8:9::1/128 dev va0 table local proto kernel scope global",
			"unicast 2001:db8:9::/64 dev va0 table main proto kernel scope global metric 256 linkdown",
		}, nil},
		{"carrier back", []fib.Change{fib.Carrier{Name: "va0"}, fib.Carrier{Name: "va0", On: true}}, "va0", []string{
			"local 10.9.0.1/32 dev va0 table local proto kernel scope host src 10.9.0.1",
			"unicast 10.9.0.0/24 dev va0 table main proto kernel scope link src 10.9.0.1",
			"broadcast 10.9.0.255/32 dev va0 table local proto kernel scope link src 10.9.0.1",
			"local 2001:db8:9::1/128 dev va0 table local proto kernel scope global",
			"unicast 2001:db8:9::/64 dev va0 table main proto kernel scope global metric 256",
		}, nil},
		{"IPv6 forwarding joins and leaves anycast", []fib.Change{
			fib.SetForwarding{Family: fib.V6, On: true},
			fib.AddAddress{Address: fib.Address{Prefix: pfx("2001:db8:7::1/64"), Link: "va0"}},
			fib.DelAddress{Address: fib.Address{Prefix: pfx("2001:db8:9::1/64"), Link: "va0"}},
		}, "va0", []string{
			"local 10.9.0.1/32 dev va0 table local proto kernel scope host src 10.9.0.1",
			"unicast 10.9.0.0/24 dev va0 table main proto kernel scope link src 10.9.0.1",
			"broadcast 10.9.0.255/32 dev va0 table local proto kernel scope link src 10.9.0.1",
			"local 2001:db8:7::1/128 dev va0 table local proto kernel scope global",
			"unicast 2001:db8:7::/64 dev va0 table main proto kernel scope global metric 256",
			"anycast 2001:db8:7::/128 dev va0 table local proto kernel scope global",
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := fib.NewModel()
			if err := m.Apply(whatIfBase()...); err != nil {
				t.Fatalf("base: %v", err)
			}
			err := m.Apply(tt.changes...)
			if !errors.Is(err, tt.err) {
				t.Fatalf("Apply: %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if got := devRoutes(m, tt.dev); !slices.Equal(got, tt.want) {
				t.Errorf("routes through %s:\n  %s\nwant:\n  %s", tt.dev, strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

// TestWhatIfLookups checks answers after changes: a pod behind a veth
// that loses its link is unreachable, and reachable again once it is back.
func TestWhatIfLookups(t *testing.T) {
	m := fib.NewModel()
	if err := m.Apply(whatIfBase()...); err != nil {
		t.Fatal(err)
	}
	ask := func(dst string) fib.Result {
		t.Helper()
		res, err := m.Lookup(fib.Query{Dst: netip.MustParseAddr(dst)})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := ask("10.9.0.7"); res.Dev != "va0" || res.Err != 0 {
		t.Fatalf("before: %s", &res)
	}
	if err := m.Apply(fib.LinkDown{Name: "va0"}); err != nil {
		t.Fatal(err)
	}
	if res := ask("10.9.0.7"); res.Err != syscall.ENETUNREACH {
		t.Errorf("va0 down: %s, want ENETUNREACH", &res)
	}
	if res := ask("10.9.0.1"); res.Dev != "lo" || res.Type != fib.TypeLocal {
		t.Errorf("own address on a down device: %s, want local dev lo", &res)
	}
	if err := m.Apply(fib.LinkUp{Name: "va0"}); err != nil {
		t.Fatal(err)
	}
	if res := ask("10.9.0.7"); res.Dev != "va0" || res.Err != 0 {
		t.Errorf("va0 up again: %s", &res)
	}
}
