package iproute

import (
	"reflect"
	"strings"
	"testing"

	"github.com/fibguard/fibguard/fib"
)

func TestParseLinks(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []fib.Link
	}{
		{
			// The kernel of the golden dumps has no VRF support; this is
			// the shape iproute2's iplink_vrf.c prints, trimmed.
			name: "VRF and its slave",
			in: `[{"ifindex":4,"ifname":"blue","flags":["NOARP","MASTER","UP","LOWER_UP"],"link_type":"ether","linkinfo":{"info_kind":"vrf","info_data":{"table":100}}},
			      {"ifindex":5,"ifname":"eth1","flags":["BROADCAST","UP","LOWER_UP"],"master":"blue","link_type":"ether","linkinfo":{"info_slave_kind":"vrf","info_slave_data":{"table":100}}}]`,
			want: []fib.Link{
				{Index: 4, Name: "blue", Kind: fib.KindVRF, Up: true, Carrier: true, VRFTable: 100},
				{Index: 5, Name: "eth1", Kind: fib.KindOther, Up: true, Carrier: true, Master: 4},
			},
		},
		{
			name: "numbers of ip -N",
			in:   `[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"group":"0","link_type":"[772]"}]`,
			want: []fib.Link{{Index: 1, Name: "lo", Kind: fib.KindLoopback, Up: true, Carrier: true}},
		},
		{
			name: "master listed after its slave",
			in:   `[{"ifindex":3,"ifname":"p1","flags":[],"master":"br9"},{"ifindex":9,"ifname":"br9","flags":["UP"],"linkinfo":{"info_kind":"bridge"}}]`,
			want: []fib.Link{
				{Index: 3, Name: "p1", Kind: fib.KindOther, Master: 9},
				{Index: 9, Name: "br9", Kind: fib.KindBridge, Up: true},
			},
		},
		{
			name: "without -d every kind but loopback is other",
			in:   `[{"ifindex":2,"ifname":"veth0","flags":["UP"],"link":"veth1","link_type":"ether"}]`,
			want: []fib.Link{{Index: 2, Name: "veth0", Kind: fib.KindOther, Up: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLinks([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseAddrs(t *testing.T) {
	in := `[{"ifindex":2,"ifname":"eth0","flags":["UP"],"addr_info":[
		{"family":"inet6","local":"2001:db8::5","prefixlen":64,"scope":"global","temporary":true,"dynamic":true},
		{"family":"inet6","local":"2001:db8::6","prefixlen":64,"scope":"global","tentative":true,"dadfailed":true},
		{"family":"inet","local":"192.0.2.7","prefixlen":24,"broadcast":"192.0.2.255","scope":"global","label":"eth0:1"}]}]`
	links, addrs, err := ParseAddrs([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	wantLinks := []fib.Link{{Index: 2, Name: "eth0", Kind: fib.KindOther, Up: true}}
	wantAddrs := []fib.Address{
		{Prefix: pfx("2001:db8::5/64"), Link: "eth0"},
		{Prefix: pfx("2001:db8::6/64"), Link: "eth0", Tentative: true},
		{Prefix: pfx("192.0.2.7/24"), Link: "eth0"},
	}
	if !reflect.DeepEqual(links, wantLinks) {
		t.Errorf("links: got %+v, want %+v", links, wantLinks)
	}
	if !reflect.DeepEqual(addrs, wantAddrs) {
		t.Errorf("addresses: got %+v, want %+v", addrs, wantAddrs)
	}
}

func TestParseLinksErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"no ifindex", `[{"ifname":"a"}]`, `link 0: no "ifindex"`},
		{"ifindex 0", `[{"ifindex":0,"ifname":"a"}]`, `link 0 ("ifindex":0): out of range`},
		{"no ifname", `[{"ifindex":1}]`, `link 0: no "ifname"`},
		{"empty ifname", `[{"ifindex":1,"ifname":""}]`, `link 0 ("ifname":""): empty name`},
		{"duplicate name", `[{"ifindex":1,"ifname":"a"},{"ifindex":2,"ifname":"a"}]`, `link 1 ("ifname":"a"): duplicate device name`},
		{"duplicate index", `[{"ifindex":1,"ifname":"a"},{"ifindex":1,"ifname":"b"}]`, `link 1 ("ifindex":1): index also of "a"`},
		{"unknown master", `[{"ifindex":1,"ifname":"a","master":"br0"}]`, `link 0 ("master":"br0"): unknown device`},
		{"own master", `[{"ifindex":1,"ifname":"a","master":"a"}]`, `link 0 ("master":"a"): unknown device`},
		{"unknown group", `[{"ifindex":1,"ifname":"a","group":"dmz"}]`, `link 0 ("group":"dmz"): unknown device group`},
		{"flags not strings", `[{"ifindex":1,"ifname":"a","flags":[1]}]`, `link 0 ("flags":[1]): json: cannot unmarshal number`},
		{"linkinfo not an object", `[{"ifindex":1,"ifname":"a","linkinfo":"vrf"}]`, `link 0 ("linkinfo":"vrf"): not a JSON object`},
		{"VRF without table", `[{"ifindex":1,"ifname":"a","linkinfo":{"info_kind":"vrf","info_data":{}}}]`, `link 0 linkinfo info_data: no "table"`},
		{"VRF without data", `[{"ifindex":1,"ifname":"a","linkinfo":{"info_kind":"vrf"}}]`, `link 0 linkinfo: no "info_data"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseLinks([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseAddrsErrors(t *testing.T) {
	link := func(addrInfo string) string {
		return `[{"ifindex":1,"ifname":"lo"},{"ifindex":2,"ifname":"eth0","addr_info":[` + addrInfo + `]}]`
	}
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"addr_info not an array", `[{"ifindex":1,"ifname":"a","addr_info":{}}]`, `link 0 ("addr_info":{}): json: cannot unmarshal object`},
		{"no family", link(`{"local":"10.0.0.1","prefixlen":8}`), `link 1 address 0: no "family"`},
		{"unknown family", link(`{"family":"mpls","local":"10.0.0.1","prefixlen":8}`), `link 1 address 0 ("family":"mpls"): unsupported family`},
		{"family mismatch", link(`{"family":"inet6","local":"10.0.0.1","prefixlen":8}`), `link 1 address 0 ("local":"10.0.0.1"): bad address: 10.0.0.1 is not inet6`},
		{"no local", link(`{"family":"inet","prefixlen":8}`), `link 1 address 0: no "local"`},
		{"no prefixlen", link(`{"family":"inet","local":"10.0.0.1"}`), `link 1 address 0: no "prefixlen"`},
		{"prefixlen too long", link(`{"family":"inet","local":"10.0.0.1","prefixlen":33}`), `link 1 address 0 ("prefixlen":33): out of range [0, 32]`},
		{"bad peer", link(`{"family":"inet","local":"10.0.0.1","address":"::1","prefixlen":32}`), `link 1 address 0 ("address":"::1"): bad address`},
		{"bad scope", link(`{"family":"inet","local":"10.0.0.1","prefixlen":8,"scope":"planet"}`), `link 1 address 0 ("scope":"planet"): unknown scope`},
		{"address not an object", link(`"10.0.0.1/8"`), `link 1 address 0: json: cannot unmarshal string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseAddrs([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
