// Package examplenode builds the node models fibguard uses when the user
// names no namespace or snapshot: a typical Kubernetes node, and the same
// node with a CNI bridge given a loopback address (the Docker mistake the
// project exists to catch).
package examplenode

import (
	"fmt"
	"net/netip"

	"github.com/fibguard/fibguard/fib"
)

// Typical returns a node with lo 127.0.0.1/8, eth0 10.0.0.10/24 and a
// default route via 10.0.0.1, in a namespace that never had custom rules.
func Typical() *fib.Model {
	m := fib.NewModel()
	must(m.Apply(
		fib.LinkUp{Name: "lo"},
		fib.AddAddress{Address: fib.Address{Prefix: netip.MustParsePrefix("127.0.0.1/8"), Link: "lo"}},
		fib.AddAddress{Address: fib.Address{Prefix: netip.MustParsePrefix("::1/128"), Link: "lo"}},
		fib.AddLink{Link: fib.Link{Name: "eth0", Kind: fib.KindOther, Up: true, Carrier: true}},
		fib.AddAddress{Address: fib.Address{Prefix: netip.MustParsePrefix("10.0.0.10/24"), Link: "eth0"}},
		fib.AddRoute{Route: fib.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Protocol: "static", NextHops: []fib.NextHop{{Link: "eth0", Gateway: netip.MustParseAddr("10.0.0.1")}}}},
	))
	return m
}

// LoopbackBridge returns the typical node with a bridge cni0 that was given
// 127.16.0.1/16, as bridge + host-local on 127.16.0.0/16 configures it.
func LoopbackBridge() *fib.Model {
	m := Typical()
	must(m.Apply(
		fib.AddLink{Link: fib.Link{Name: "cni0", Kind: fib.KindBridge, Up: true, Carrier: true}},
		fib.AddAddress{Address: fib.Address{Prefix: netip.MustParsePrefix("127.16.0.1/16"), Link: "cni0"}},
	))
	return m
}

// must panics on an error in the fixed changes above: they are constants,
// so an error is a bug caught by the package's tests.
func must(err error) {
	if err != nil {
		panic(fmt.Sprintf("examplenode: %v", err))
	}
}
