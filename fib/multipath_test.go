package fib

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

// multipathModel is a node with eth0 (10.0.0.10/24), eth1 (10.1.0.10/24)
// and eth2 (10.2.0.10/24) and the given routes added.
func multipathModel(t *testing.T, routes ...string) *Model {
	t.Helper()
	m := NewModel()
	m.st.Links[0].Up, m.st.Links[0].Carrier = true, true
	for i, name := range []string{"eth0", "eth1", "eth2"} {
		m.st.Links = append(m.st.Links, Link{Index: i + 2, Name: name, Kind: KindOther, Up: true, Carrier: true})
		p := netip.MustParsePrefix([]string{"10.0.0.10/24", "10.1.0.10/24", "10.2.0.10/24"}[i])
		m.st.Addrs = append(m.st.Addrs, Address{Prefix: p, Link: name})
		m.st.Routes = append(m.st.Routes, Route{Family: V4, Table: TableMain, Type: TypeUnicast, Dst: p.Masked(), Scope: ScopeLink, Protocol: "kernel", PrefSrc: p.Addr(), NextHops: []NextHop{{Link: name}}})
	}
	for _, s := range routes {
		r, err := ParseRoute(s)
		if err != nil {
			t.Fatal(err)
		}
		m.st.Routes = append(m.st.Routes, r)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMultipathPaths(t *testing.T) {
	const ecmp = "unicast 10.9.0.0/16 table main scope global nexthop via 10.0.0.1 dev eth0 weight 1 nexthop via 10.1.0.1 dev eth1 weight 2 nexthop via 10.2.0.1 dev eth2 weight 1"
	tests := []struct {
		name  string
		route string
		conf  map[string]DevConf
		q     Query
		want  string // Result.String()
	}{
		{"every next hop", ecmp, nil, Query{Dst: netip.MustParseAddr("10.9.1.1")},
			"10.9.1.1 via 10.0.0.1 dev eth0 src 10.0.0.10 (multipath, one per flow: via 10.0.0.1 dev eth0 src 10.0.0.10 | via 10.1.0.1 dev eth1 src 10.1.0.10 weight 2 | via 10.2.0.1 dev eth2 src 10.2.0.10)"},
		{"a dead next hop is left out", strings.Replace(ecmp, "dev eth1 weight 2", "dev eth1 weight 2 dead", 1), nil, Query{Dst: netip.MustParseAddr("10.9.1.1")},
			"10.9.1.1 via 10.0.0.1 dev eth0 src 10.0.0.10 (multipath, one per flow: via 10.0.0.1 dev eth0 src 10.0.0.10 | via 10.2.0.1 dev eth2 src 10.2.0.10)"},
		{"a link-down next hop counts", strings.Replace(ecmp, "dev eth0 weight 1", "dev eth0 weight 1 linkdown", 1), nil, Query{Dst: netip.MustParseAddr("10.9.1.1")},
			"10.9.1.1 via 10.0.0.1 dev eth0 src 10.0.0.10 (multipath, one per flow: via 10.0.0.1 dev eth0 src 10.0.0.10 | via 10.1.0.1 dev eth1 src 10.1.0.10 weight 2 | via 10.2.0.1 dev eth2 src 10.2.0.10)"},
		{"unless its device ignores link-down routes", strings.Replace(ecmp, "dev eth0 weight 1", "dev eth0 weight 1 linkdown", 1),
			map[string]DevConf{"eth0": {IgnoreRoutesWithLinkdown: true}}, Query{Dst: netip.MustParseAddr("10.9.1.1")},
			"10.9.1.1 via 10.1.0.1 dev eth1 src 10.1.0.10 (multipath, one per flow: via 10.1.0.1 dev eth1 src 10.1.0.10 weight 2 | via 10.2.0.1 dev eth2 src 10.2.0.10)"},
		{"one left is no choice", strings.Replace(strings.Replace(ecmp, "dev eth1 weight 2", "dev eth1 weight 2 dead", 1), "dev eth2 weight 1", "dev eth2 weight 1 dead", 1), nil,
			Query{Dst: netip.MustParseAddr("10.9.1.1")}, "10.9.1.1 via 10.0.0.1 dev eth0 src 10.0.0.10"},
		{"an output device leaves no choice", ecmp, nil, Query{Dst: netip.MustParseAddr("10.9.1.1"), OIF: "eth2"}, "10.9.1.1 via 10.2.0.1 dev eth2 src 10.2.0.10"},
		{"a given source prefers its next hops", ecmp, nil, Query{Dst: netip.MustParseAddr("10.9.1.1"), Src: netip.MustParseAddr("10.1.0.10")}, "10.9.1.1 via 10.1.0.1 dev eth1"},
		{"a group ignores the source", strings.Replace(ecmp, "scope global", "nhid 7 scope global", 1), nil, Query{Dst: netip.MustParseAddr("10.9.1.1"), Src: netip.MustParseAddr("10.1.0.10")},
			"10.9.1.1 via 10.0.0.1 dev eth0 (multipath, one per flow: via 10.0.0.1 dev eth0 | via 10.1.0.1 dev eth1 weight 2 | via 10.2.0.1 dev eth2)"},
		{"input: forwarded through each", ecmp, map[string]DevConf{"eth0": {Forwarding: true}}, Query{Dst: netip.MustParseAddr("10.9.1.1"), Src: netip.MustParseAddr("10.0.0.7"), IIF: "eth0"},
			"10.9.1.1 via 10.0.0.1 dev eth0 (multipath, one per flow: via 10.0.0.1 dev eth0 | via 10.1.0.1 dev eth1 weight 2 | via 10.2.0.1 dev eth2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := multipathModel(t, tt.route)
			m.st.Conf = tt.conf
			fast, err := m.Lookup(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			for slow, res := range []Result{fast, m.reference(tt.q)} {
				if res.String() != tt.want {
					t.Errorf("reference=%d: %s:\n got  %s\n want %s\ntrace:\n%s", slow, tt.q.Dst, res.String(), tt.want, traceText(res))
				}
			}
		})
	}
}

func traceText(res Result) string {
	var b strings.Builder
	for _, s := range res.Trace {
		b.WriteString("  " + s.String() + "\n")
	}
	return b.String()
}

// TestNexthopMiss: a route through a nexthop object with no next hop on
// the output device ends the search of its trie leaf, so a shorter route
// of the same network address is not tried; a route with its own next
// hops does not.
func TestNexthopMiss(t *testing.T) {
	for _, tt := range []struct {
		nhid string
		want string
	}{
		{"", "10.9.0.1 via 10.2.0.1 dev eth2 src 10.2.0.10"},
		{"nhid 3 ", "10.9.0.1 dev eth2 src 10.2.0.10"},
	} {
		m := multipathModel(t,
			"unicast 10.9.0.0/24 table main "+tt.nhid+"scope global nexthop via 10.0.0.1 dev eth0 weight 1 nexthop via 10.1.0.1 dev eth1 weight 1",
			"unicast 10.9.0.0/16 via 10.2.0.1 dev eth2 table main scope global")
		res, err := m.Lookup(Query{Dst: netip.MustParseAddr("10.9.0.1"), OIF: "eth2"})
		if err != nil {
			t.Fatal(err)
		}
		if res.String() != tt.want {
			t.Errorf("%q: got %s, want %s\n%s", tt.nhid, res.String(), tt.want, traceText(res))
		}
	}
}

func TestDiffMultipath(t *testing.T) {
	m := multipathModel(t, "unicast 10.9.0.0/16 table main scope global nexthop via 10.0.0.1 dev eth0 weight 1 nexthop via 10.1.0.1 dev eth1 weight 1")
	model, err := m.Lookup(Query{Dst: netip.MustParseAddr("10.9.1.1")})
	if err != nil {
		t.Fatal(err)
	}
	second := Result{Dst: model.Dst, Type: TypeUnicast, Table: TableMain, Dev: "eth1", Gateway: netip.MustParseAddr("10.1.0.1"), PrefSrc: netip.MustParseAddr("10.1.0.10")}
	if d := model.Diff(&second); len(d) != 0 {
		t.Errorf("the kernel's choice of the second next hop: %v", d)
	}
	if d := second.Diff(&model); len(d) != 0 {
		t.Errorf("swapped: %v", d)
	}
	other := second
	other.Dev = "eth2"
	d := model.Diff(&other)
	if len(d) == 0 || !strings.Contains(d[len(d)-1], "none of the 2 next hops") {
		t.Errorf("a choice outside the set: %v", d)
	}
}

func TestNHIDText(t *testing.T) {
	const line = "unicast 10.9.0.0/16 nhid 7 table main scope global nexthop via 10.0.0.1 dev eth0 weight 1 nexthop via 10.1.0.1 dev eth1 weight 1"
	r, err := ParseRoute(line)
	if err != nil {
		t.Fatal(err)
	}
	if r.NHID != 7 || len(r.NextHops) != 2 {
		t.Fatalf("parsed %+v", r)
	}
	text, _ := r.MarshalText()
	if string(text) != line {
		t.Errorf("round trip:\n got  %s\n want %s", text, line)
	}
	for _, bad := range []string{"nhid 0", "nhid x", "nhid -1"} {
		if _, err := ParseRoute("unicast 10.9.0.0/16 " + bad + " dev eth0 table main scope global"); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	m := multipathModel(t, line)
	var buf bytes.Buffer
	if err := m.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.st.Routes[len(back.st.Routes)-1]; got.NHID != 7 {
		t.Errorf("snapshot lost the nhid: %s", got.String())
	}
}

// TestSourceOnSeveralDevices: a multicast or broadcast packet from a given
// source leaves through the device the source was assigned to last, which
// the model cannot know when the address is on several devices (random
// setup seed 483 of fib/difftest): it answers with each.
func TestSourceOnSeveralDevices(t *testing.T) {
	m := multipathModel(t)
	m.st.Addrs = append(m.st.Addrs, Address{Prefix: netip.MustParsePrefix("10.0.0.10/24"), Link: "eth2", Secondary: true})
	for dst, want := range map[string]string{
		"224.0.0.5":       "multicast 224.0.0.5 dev eth0 (through the device the source was assigned to last: dev eth0 | dev eth2)",
		"255.255.255.255": "broadcast 255.255.255.255 dev eth0 (through the device the source was assigned to last: dev eth0 | dev eth2)",
		"10.1.0.7":        "10.1.0.7 dev eth1",
	} {
		res, err := m.Lookup(Query{Dst: netip.MustParseAddr(dst), Src: netip.MustParseAddr("10.0.0.10")})
		if err != nil {
			t.Fatal(err)
		}
		if res.String() != want {
			t.Errorf("%s from 10.0.0.10: %s, want %s", dst, res.String(), want)
		}
	}
}
