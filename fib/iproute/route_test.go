package iproute

import (
	"reflect"
	"strings"
	"testing"

	"github.com/fibguard/fibguard/fib"
)

func TestParseRoutes(t *testing.T) {
	tests := []struct {
		name   string
		family fib.Family
		in     string
		want   fib.Route
	}{
		{
			name:   "defaults of output without -d",
			family: fib.V4,
			in:     `[{"dst":"10.0.0.0/8","dev":"eth0","flags":[]}]`,
			want:   fib.Route{Family: fib.V4, Table: fib.TableMain, Type: fib.TypeUnicast, Dst: pfx("10.0.0.0/8"), Protocol: "boot", NextHops: dev("eth0")},
		},
		{
			name:   "destination is masked",
			family: fib.V4,
			in:     `[{"dst":"10.1.2.3/8","dev":"eth0"}]`,
			want:   fib.Route{Family: fib.V4, Table: fib.TableMain, Type: fib.TypeUnicast, Dst: pfx("10.0.0.0/8"), Protocol: "boot", NextHops: dev("eth0")},
		},
		{
			name:   "bare IPv6 address is a host route",
			family: fib.V6,
			in:     `[{"dst":"2001:db8::1","dev":"eth0","pref":"medium"}]`,
			want:   fib.Route{Family: fib.V6, Table: fib.TableMain, Type: fib.TypeUnicast, Dst: pfx("2001:db8::1/128"), Protocol: "boot", NextHops: dev("eth0")},
		},
		{
			name:   "numbers of ip -N",
			family: fib.V4,
			in:     `[{"type":"2","dst":"10.0.0.1","dev":"eth0","table":"255","protocol":"2","scope":"254"}]`,
			want:   fib.Route{Family: fib.V4, Table: fib.TableLocal, Type: fib.TypeLocal, Dst: pfx("10.0.0.1/32"), Protocol: "kernel", Scope: fib.ScopeHost, NextHops: dev("eth0")},
		},
		{
			name:   "unnamed protocol number",
			family: fib.V4,
			in:     `[{"dst":"10.0.0.0/8","dev":"eth0","protocol":"77"}]`,
			want:   fib.Route{Family: fib.V4, Table: fib.TableMain, Type: fib.TypeUnicast, Dst: pfx("10.0.0.0/8"), Protocol: "77", NextHops: dev("eth0")},
		},
		{
			name:   "multipath weight left out",
			family: fib.V4,
			in:     `[{"dst":"10.0.0.0/8","nexthops":[{"gateway":"10.1.0.1","dev":"eth0"},{"gateway":"10.2.0.1","dev":"eth1","flags":["onlink"]}]}]`,
			want: fib.Route{Family: fib.V4, Table: fib.TableMain, Type: fib.TypeUnicast, Dst: pfx("10.0.0.0/8"), Protocol: "boot", NextHops: []fib.NextHop{
				{Link: "eth0", Gateway: addr("10.1.0.1"), Weight: 1},
				{Link: "eth1", Gateway: addr("10.2.0.1"), Weight: 1, OnLink: true},
			}},
		},
		{
			name:   "route flags of a route without device are dropped with it",
			family: fib.V4,
			in:     `[{"type":"blackhole","dst":"10.0.0.0/8","flags":["dead"]}]`,
			want:   fib.Route{Family: fib.V4, Table: fib.TableMain, Type: fib.TypeBlackhole, Dst: pfx("10.0.0.0/8"), Protocol: "boot"},
		},
		{
			name:   "default route without gateway is IPv4 without pref",
			family: fib.V4,
			in:     `[{"dst":"default","dev":"ppp0"},{"type":"unreachable","dst":"default","dev":"lo","metric":4278198272,"pref":"medium"}]`,
			want:   fib.Route{Family: fib.V4, Table: fib.TableMain, Type: fib.TypeUnicast, Dst: pfx("0.0.0.0/0"), Protocol: "boot", NextHops: dev("ppp0")},
		},
		{
			name:   "IPv6 default route of a mixed dump",
			family: fib.V6,
			in:     `[{"dst":"default","dev":"ppp0"},{"type":"unreachable","dst":"default","dev":"lo","metric":4278198272,"pref":"medium"}]`,
			want:   fib.Route{Family: fib.V6, Table: fib.TableMain, Type: fib.TypeUnreachable, Dst: pfx("::/0"), Metric: 4278198272, Protocol: "boot", NextHops: dev("lo")},
		},
		{
			name:   "ignored keys",
			family: fib.V4,
			in:     `[{"dst":"10.0.0.0/8","dev":"eth0","metrics":[{"mtu":1400}],"flow":{"to":"5"},"encap":"mpls","cache":[],"expires":5,"flags":["offload","trap"]}]`,
			want:   fib.Route{Family: fib.V4, Table: fib.TableMain, Type: fib.TypeUnicast, Dst: pfx("10.0.0.0/8"), Protocol: "boot", NextHops: dev("eth0")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRoutes([]byte(tt.in), tt.family)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || !reflect.DeepEqual(got[0], tt.want) {
				t.Errorf("got  %+v\nwant [%+v]", got, tt.want)
			}
		})
	}
}

func TestParseRoutesErrors(t *testing.T) {
	tests := []struct {
		name   string
		family fib.Family
		in     string
		want   string
	}{
		{"not JSON", fib.V4, `[{`, "route dump: unexpected end of JSON input"},
		{"not an array", fib.V4, `{"dst":"default"}`, "route dump: json: cannot unmarshal object"},
		{"null item", fib.V4, `[null]`, "route 0: not a JSON object"},
		{"bad prefix", fib.V4, `[{"dst":"10.0.0.0/24","dev":"a"},{"dst":"10.0.0.0/24","dev":"a"},{"dst":"10.0.0.0/24","dev":"a"},{"dst":"10.0.0.300/24","dev":"a"}]`, `route 3 ("dst":"10.0.0.300/24"): bad prefix`},
		{"prefix too long", fib.V4, `[{"dst":"10.0.0.0/33","dev":"a"}]`, `route 0 ("dst":"10.0.0.0/33"): bad prefix`},
		{"zone", fib.V6, `[{"dst":"fe80::1%eth0","dev":"a"}]`, `route 0 ("dst":"fe80::1%eth0"): bad prefix: address has a zone`},
		{"no dst", fib.V4, `[{"dev":"a"}]`, `route 0: no "dst"`},
		{"dst null", fib.V4, `[{"dst":null,"dev":"a"}]`, `route 0 ("dst":null): not a string`},
		{"dst a number", fib.V4, `[{"dst":10,"dev":"a"}]`, `route 0 ("dst":10): json: cannot unmarshal number`},
		{"unknown type", fib.V4, `[{"type":"nat","dst":"10.0.0.0/8","dev":"a"}]`, `route 0 ("type":"nat"): unknown route type "nat"`},
		{"type unspec", fib.V4, `[{"type":"unspec","dst":"10.0.0.0/8","dev":"a"}]`, `route 0 ("type":"unspec"): unsupported route type`},
		{"type number out of range", fib.V4, `[{"type":"10","dst":"10.0.0.0/8","dev":"a"}]`, `route 0 ("type":"10"): unsupported route type`},
		{"unknown table name", fib.V4, `[{"dst":"10.0.0.0/8","dev":"a","table":"blue"}]`, `route 0 ("table":"blue"): unknown table "blue" (dump with ip -N)`},
		{"table unspec", fib.V4, `[{"dst":"10.0.0.0/8","dev":"a","table":"unspec"}]`, `route 0 ("table":"unspec"): table unspec`},
		{"unknown scope", fib.V4, `[{"dst":"10.0.0.0/8","dev":"a","scope":"galaxy"}]`, `route 0 ("scope":"galaxy"): unknown scope`},
		{"bad tos", fib.V4, `[{"dst":"10.0.0.0/8","dev":"a","tos":"16"}]`, `route 0 ("tos":"16"): unknown DS field "16"`},
		{"negative metric", fib.V4, `[{"dst":"10.0.0.0/8","dev":"a","metric":-1}]`, `route 0 ("metric":-1): out of range`},
		{"metric too large", fib.V4, `[{"dst":"10.0.0.0/8","dev":"a","metric":4294967296}]`, `route 0 ("metric":4294967296): out of range`},
		{"fractional metric", fib.V4, `[{"dst":"10.0.0.0/8","dev":"a","metric":1.5}]`, `route 0 ("metric":1.5): json: cannot unmarshal number 1.5`},
		{"prefsrc of the other family", fib.V4, `[{"dst":"10.0.0.0/8","dev":"a","prefsrc":"::1"}]`, `route 0 ("prefsrc":"::1"): bad address: ::1 is not inet`},
		{"from of the other family", fib.V6, `[{"dst":"2001:db8::/32","dev":"a","from":"10.0.0.0/8"}]`, `route 0 ("from":"10.0.0.0/8"): bad prefix`},
		{"unicast without device", fib.V4, `[{"dst":"10.0.0.0/8"}]`, `route 0: unicast route without device or gateway`},
		{"local without device", fib.V4, `[{"type":"local","dst":"10.0.0.1"}]`, `route 0: local route without device or gateway`},
		{"flags not an array", fib.V4, `[{"dst":"10.0.0.0/8","dev":"a","flags":"onlink"}]`, `route 0 ("flags":"onlink"): json: cannot unmarshal string`},
		{"via without host", fib.V4, `[{"dst":"10.0.0.0/8","dev":"a","via":{"family":"inet6"}}]`, `route 0 via: no "host"`},
		{"via of an unknown family", fib.V4, `[{"dst":"10.0.0.0/8","dev":"a","via":{"family":"mpls","host":"100"}}]`, `route 0 via ("family":"mpls"): unsupported family`},
		{"via not an object", fib.V4, `[{"dst":"10.0.0.0/8","dev":"a","via":"fe80::1"}]`, `route 0 ("via":"fe80::1"): not a JSON object`},
		{"gateway and via", fib.V4, `[{"dst":"10.0.0.0/8","dev":"a","gateway":"10.0.0.1","via":{"family":"inet6","host":"fe80::1"}}]`, `route 0 ("via":{"family":"inet6","host":"fe80::1"}): beside a gateway`},
		{"IPv4 via of an IPv6 route", fib.V6, `[{"dst":"2001:db8::/32","dev":"a","via":{"family":"inet","host":"10.0.0.1"}}]`, `route 0 ("via":{"family":"inet","host":"10.0.0.1"}): IPv4 gateway of an IPv6 route`},
		{"empty nexthops", fib.V4, `[{"dst":"10.0.0.0/8","nexthops":[]}]`, `route 0 ("nexthops":[]): empty`},
		{"dev beside nexthops", fib.V4, `[{"dst":"10.0.0.0/8","dev":"a","nexthops":[{"dev":"a"}]}]`, `route 0 ("dev":"a"): beside a nexthops array`},
		{"next hop without device", fib.V4, `[{"dst":"10.0.0.0/8","nexthops":[{"dev":"a"},{"weight":1}]}]`, `route 0 nexthop 1: neither device nor gateway`},
		{"next hop weight 0", fib.V4, `[{"dst":"10.0.0.0/8","nexthops":[{"dev":"a","weight":0}]}]`, `route 0 nexthop 0 ("weight":0): out of range [1, 256]`},
		{"next hop bad gateway", fib.V6, `[{"dst":"::/0","nexthops":[{"dev":"a","gateway":"fe80::g"}]}]`, `route 0 nexthop 0 ("gateway":"fe80::g"): bad address`},
		{"bad family", fib.Family(7), `[]`, `unsupported family family(7)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRoutes([]byte(tt.in), tt.family)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
