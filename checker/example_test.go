package checker_test

import (
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/fibguard/fibguard/checker"
	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/internal/examplenode"
)

// The bridge plugin with host-local on 127.16.0.0/16: the node's bridge
// cni0 has 127.16.0.1/16, and the pod got 127.16.0.2.
func ExampleCheck() {
	host := examplenode.LoopbackBridge()
	if err := host.Apply(fib.AddLink{Link: fib.Link{Name: "veth1", Kind: fib.KindVeth, Up: true, Carrier: true}}); err != nil {
		fmt.Println(err)
		return
	}
	addr, err := types.ParseCIDR("127.16.0.2/16")
	if err != nil {
		fmt.Println(err)
		return
	}
	result := &current.Result{
		CNIVersion: "1.1.0",
		Interfaces: []*current.Interface{{Name: "cni0"}, {Name: "veth1"}, {Name: "eth0", Sandbox: "/var/run/netns/pod"}},
		IPs:        []*current.IPConfig{{Interface: current.Int(2), Address: *addr, Gateway: net.ParseIP("127.16.0.1")}},
	}
	findings := checker.Check(checker.Input{Host: host, Result: result}, checker.Options{
		Disabled: map[checker.Code]bool{checker.CodeGatewayBad: true},
	})
	for _, f := range findings {
		fmt.Println(f.Code, f.Severity, f.Message)
	}
	// Output:
	// FG001 error pod IP 127.16.0.2 is unreachable from the host: the kernel refuses it (EINVAL: loopback source 127.16.0.1 on cni0, route_localnet=0)
	// FG020 error pod IP 127.16.0.2 is in the loopback range 127.0.0.0/8
}

// Catalog and Known let a plugin check the codes its configuration names.
func ExampleKnown() {
	fmt.Println(checker.Known("FG001"), checker.Known("FG999"))
	// Output:
	// true false
}
