package fib

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestRouteTextRoundTrip(t *testing.T) {
	gw := netip.MustParseAddr("10.0.0.1")
	tests := []Route{
		{Family: V4, Table: TableLocal, Type: TypeLocal, Dst: netip.MustParsePrefix("127.0.0.0/8"), Scope: ScopeHost, Protocol: "kernel", PrefSrc: netip.MustParseAddr("127.0.0.1"), NextHops: []NextHop{{Link: "lo"}}},
		{Family: V4, Table: TableMain, Type: TypeUnicast, Dst: netip.MustParsePrefix("0.0.0.0/0"), NextHops: []NextHop{{Link: "eth0", Gateway: gw, OnLink: true, LinkDown: true}}},
		{Family: V4, Table: 100, Type: TypeBlackhole, Dst: netip.MustParsePrefix("10.9.0.0/16"), Metric: 20, TOS: 0x10},
		{Family: V6, Table: TableMain, Type: TypeUnicast, Dst: netip.MustParsePrefix("2001:db8::/64"), Metric: 1024, Src: netip.MustParsePrefix("2001:db8:1::/64"), NextHops: []NextHop{{Link: "br0"}}},
		{Family: V4, Table: TableMain, Type: TypeUnicast, Dst: netip.MustParsePrefix("10.8.0.0/16"), NextHops: []NextHop{{Link: "eth0", Gateway: gw, Weight: 1}, {Link: "eth1", Gateway: netip.MustParseAddr("10.0.1.1"), Weight: 3, Dead: true}}},
	}
	for _, want := range tests {
		text, err := want.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseRoute(string(text))
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip of %s:\n got  %+v\n want %+v", text, got, want)
		}
	}
}

func TestParseRouteErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "empty"},
		{"unicast", "no destination"},
		{"bogus 10.0.0.0/8 table main scope global", "unknown route type"},
		{"unicast 10.0.0.1/8 table main scope global", "host bits"},
		{"unicast 10.0.0.0/33 table main scope global", "destination"},
		{"unicast 10.0.0.0/8 table nosuch scope global", "unknown table"},
		{"unicast 10.0.0.0/8 table main scope global metric", "without a value"},
		{"unicast 10.0.0.0/8 table main scope global color red", "unknown keyword"},
		{"unicast 10.0.0.0/8 dev eth0 scope global", "table and scope are required"},
		{"unicast 10.0.0.0/8 via 10.0.0.300 table main scope global", "via"},
	}
	for _, tt := range tests {
		_, err := ParseRoute(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseRoute(%q) = %v, want an error containing %q", tt.in, err, tt.want)
		}
	}
}

// TestRouteTextRandom round-trips random routes.
func TestRouteTextRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, f := range []Family{V4, V6} {
		for _, want := range randomRoutes(r, f, 2000) {
			text, _ := want.MarshalText()
			got, err := ParseRoute(string(text))
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip of %s: got %+v, %v", text, got, err)
			}
		}
	}
}

func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{
		"local 127.0.0.0/8 dev lo table local proto kernel scope host src 127.0.0.1",
		"unicast 0.0.0.0/0 via 10.0.0.1 dev eth0 table main scope global onlink",
		"unicast 10.8.0.0/16 table main scope global nexthop via 10.0.0.1 dev eth0 weight 1 nexthop via 10.0.1.1 dev eth1 weight 3 dead",
		"blackhole 2001:db8::/32 table 100 scope global metric 1024",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRoute(s)
		if err != nil {
			return
		}
		text, err := r.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseRoute(string(text))
		if err != nil {
			t.Fatalf("re-parse of %q (from %q): %v", text, s, err)
		}
		if !reflect.DeepEqual(again, r) {
			t.Fatalf("%q -> %q changes the route: %+v != %+v", s, text, again, r)
		}
	})
}
