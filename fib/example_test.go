package fib_test

import (
	"bytes"
	"fmt"
	"net/netip"

	"github.com/fibguard/fibguard/fib"
)

// node returns a namespace with lo and a bridge cni0 holding 10.1.2.1/24
// and the Docker mistake 127.16.0.1/16.
func node() *fib.Model {
	m := fib.NewModel()
	err := m.Apply(
		fib.LinkUp{Name: "lo"},
		fib.AddAddress{Address: fib.Address{Prefix: netip.MustParsePrefix("127.0.0.1/8"), Link: "lo"}},
		fib.AddLink{Link: fib.Link{Name: "cni0", Kind: fib.KindBridge, Up: true, Carrier: true}},
		fib.AddAddress{Address: fib.Address{Prefix: netip.MustParsePrefix("10.1.2.1/24"), Link: "cni0"}},
		fib.AddAddress{Address: fib.Address{Prefix: netip.MustParsePrefix("127.16.0.1/16"), Link: "cni0"}},
	)
	if err != nil {
		panic(err)
	}
	return m
}

func ExampleModel_Lookup() {
	m := node()
	for _, dst := range []string{"10.1.2.7", "10.1.2.1", "127.16.0.2"} {
		res, err := m.Lookup(fib.Query{Dst: netip.MustParseAddr(dst)})
		if err != nil {
			panic(err)
		}
		fmt.Println(res.String())
	}
	// Output:
	// 10.1.2.7 dev cni0 src 10.1.2.1
	// local 10.1.2.1 dev lo src 10.1.2.1
	// 127.16.0.2: EINVAL (invalid argument)
}

func ExampleModel_Lookup_trace() {
	res, _ := node().Lookup(fib.Query{Dst: netip.MustParseAddr("127.16.0.2")})
	for _, step := range res.Trace {
		fmt.Println(step)
	}
	// Output:
	// tables local and main are merged (no custom IPv4 rule was ever added): one longest-prefix match over both
	// table main: matched 127.16.0.0/16 dev cni0 table main proto kernel scope link src 127.16.0.1
	// source 127.16.0.1: the route's preferred source
	// error EINVAL: source 127.16.0.1 is a loopback address and cni0 is not the loopback device (route_localnet=0 on cni0)
}

// A custom rule splits the local and main tables for good: the 127.x pod
// address is then delivered locally instead of refused.
func ExampleModel_Apply() {
	m := node()
	err := m.Apply(fib.AddRule{Rule: fib.Rule{Priority: 100, Src: netip.MustParsePrefix("192.0.2.1/32"), Action: fib.ActionLookup, Table: 100, SuppressPrefixLen: -1, SuppressIfGroup: -1}})
	if err != nil {
		panic(err)
	}
	res, _ := m.Lookup(fib.Query{Dst: netip.MustParseAddr("127.16.0.2")})
	fmt.Println(res.String())
	// Output:
	// local 127.16.0.2 dev lo table local src 127.0.0.1
}

func ExampleDecode() {
	var buf bytes.Buffer
	if err := node().Encode(&buf); err != nil {
		panic(err)
	}
	m, err := fib.Decode(&buf)
	if err != nil {
		panic(err)
	}
	st := m.State()
	fmt.Println(len(st.Links), "links,", len(st.Routes), "routes")
	// Output:
	// 2 links, 9 routes
}
