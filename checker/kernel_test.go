package checker

import (
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/fib/live"
	"github.com/fibguard/fibguard/internal/nstest"
)

// node is a host namespace with a bridge cni0 and a veth into a pod
// namespace, as the bridge plugin leaves them, built in the real kernel.
type node struct {
	host, pod *nstest.NS
}

// newNode builds the namespaces: hostCmds run after the bridge and the
// veth pair (veth1 on the host, enslaved to cni0; eth0 in the pod, up)
// exist, podCmds after that.
func newNode(t *testing.T, hostCmds, podCmds []string) node {
	t.Helper()
	n := node{host: nstest.NewWithLoUp(t), pod: nstest.NewWithLoUp(t)}
	// No IPv6 link-local addresses: their duplicate address detection
	// would change the namespaces while the test reads them.
	base := []string{
		"link add cni0 type bridge",
		"link set cni0 addrgenmode none",
		"link set cni0 up",
		"link add veth1 type veth peer name eth0 netns " + n.pod.Name(),
		"link set veth1 addrgenmode none",
		"link set veth1 master cni0",
		"link set veth1 up",
	}
	if err := n.host.Batch(append(base, hostCmds...)); err != nil {
		t.Fatal(err)
	}
	if err := n.pod.Batch(append([]string{"link set eth0 addrgenmode none", "link set eth0 up"}, podCmds...)); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []*nstest.NS{n.host, n.pod} {
		if err := ns.Settle(5 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// input loads both namespaces and pairs them with a bridge plugin's result
// for the given "cidr gateway" IP configs; the kernel asked is the host's.
func (n node) input(t *testing.T, cidrGW ...string) Input {
	t.Helper()
	host, err := live.Load(n.host.Path())
	if err != nil {
		t.Fatalf("load host: %v", err)
	}
	pod, err := live.Load(n.pod.Path())
	if err != nil {
		t.Fatalf("load pod: %v", err)
	}
	res := bridgeResult(t, cidrGW...)
	res.Interfaces[2].Sandbox = n.pod.Path()
	return Input{
		Host:   host,
		Pod:    pod,
		Result: res,
		Kernel: func(q fib.Query) (fib.Result, error) { return live.RouteGet(n.host.Path(), q) },
	}
}

// podAnswers reports whether a TCP connection from the host to a:port
// reaches the pod's listener: the truth a host → pod finding must agree
// with. Ping would not do: when the host delivers the pod IP to itself,
// the host answers the ping.
func (n node) podAnswers(t *testing.T, a string) bool {
	t.Helper()
	var l net.Listener
	err := ns.WithNetNSPath(n.pod.Path(), func(ns.NetNS) error {
		var err error
		l, err = net.Listen("tcp", ":0")
		return err
	})
	if err != nil {
		t.Fatalf("listen in the pod: %v", err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("pod\n"))
			c.Close()
		}
	}()
	tcp, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		t.Fatalf("listener address %v is not TCP", l.Addr())
	}
	port := tcp.Port
	answer := ""
	err = ns.WithNetNSPath(n.host.Path(), func(ns.NetNS) error {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(a, strconv.Itoa(port)), 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
			return err
		}
		b, err := io.ReadAll(c)
		answer = string(b)
		return err
	})
	t.Logf("connect %s:%d from the host: answer %q, error %v", a, port, answer, err)
	return err == nil && answer == "pod\n"
}

// TestKernelNodes builds real namespaces, loads them with live.Load and
// checks them with the kernel asked too: the findings must match what the
// kernel does with traffic, and the kernel must agree with the model (no
// FG040).
func TestKernelNodes(t *testing.T) {
	tests := []struct {
		name        string
		hostCmds    []string
		podCmds     []string
		ips         []string
		routes      []string // default route gateways listed in the result
		want        []expect
		reachable   string // a pod address the host must reach,
		unreachable string // or must not
	}{
		{
			name:      "healthy bridge",
			hostCmds:  []string{"addr add 10.244.0.1/24 dev cni0"},
			podCmds:   []string{"addr add 10.244.0.5/24 dev eth0", "route add default via 10.244.0.1"},
			ips:       []string{"10.244.0.5/24 10.244.0.1"},
			routes:    []string{"10.244.0.1"},
			reachable: "10.244.0.5",
		},
		{
			name:     "127.16 bridge, merged tables",
			hostCmds: []string{"addr add 127.16.0.1/16 dev cni0"},
			podCmds:  []string{"addr add 127.16.0.2/16 dev eth0"},
			ips:      []string{"127.16.0.2/16 127.16.0.1"},
			want: []expect{
				{code: CodeHostLoopback, msg: "pod IP 127.16.0.2 is unreachable from the host: the kernel refuses it (EINVAL: loopback source 127.16.0.1 on cni0, route_localnet=0)"},
				{code: CodeGateway, msg: "gateway 127.16.0.1 of pod IP 127.16.0.2 is unreachable inside the pod: the kernel refuses it (EINVAL: source 127.16.0.2 is a loopback address and eth0 is not the loopback device"},
				{code: CodePodReserved, msg: "127.16.0.2"},
				{code: CodeGatewayBad, msg: "127.16.0.1"},
			},
			unreachable: "127.16.0.2",
		},
		{
			name: "127.16 bridge, unmerged tables",
			hostCmds: []string{
				"addr add 127.16.0.1/16 dev cni0",
				"rule add pref 1000 fwmark 1 lookup 100",
				"rule del pref 1000",
			},
			podCmds: []string{"addr add 127.16.0.2/16 dev eth0"},
			ips:     []string{"127.16.0.2/16 127.16.0.1"},
			want: []expect{
				{code: CodeHostLoopback, msg: "pod IP 127.16.0.2 would be delivered to lo, not bridge cni0 (local 127.0.0.0/8 dev lo, table local)"},
				{code: CodeGateway, msg: "127.16.0.1"},
				{code: CodePodReserved, msg: "127.16.0.2"},
				{code: CodeGatewayBad, msg: "127.16.0.1"},
			},
			unreachable: "127.16.0.2",
		},
		{
			name:      "dual-stack healthy",
			hostCmds:  []string{"addr add 10.244.0.1/24 dev cni0", "addr add fd00:10:244::1/64 dev cni0 nodad"},
			podCmds:   []string{"addr add 10.244.0.5/24 dev eth0", "addr add fd00:10:244::5/64 dev eth0 nodad", "route add default via 10.244.0.1", "route add default via fd00:10:244::1"},
			ips:       []string{"10.244.0.5/24 10.244.0.1", "fd00:10:244::5/64 fd00:10:244::1"},
			routes:    []string{"10.244.0.1", "fd00:10:244::1"},
			reachable: "fd00:10:244::5",
		},
		{
			name: "IPv6 pod IP is a node address",
			hostCmds: []string{
				"addr add fd00:10:244::1/64 dev cni0 nodad",
				"link add br1 type bridge", "link set br1 addrgenmode none", "link set br1 up",
				"addr add fd00:10:244::7/128 dev br1 nodad",
			},
			podCmds:     []string{"addr add fd00:10:244::7/64 dev eth0 nodad", "route add default via fd00:10:244::1"},
			ips:         []string{"fd00:10:244::7/64 fd00:10:244::1"},
			routes:      []string{"fd00:10:244::1"},
			want:        []expect{{code: CodeNodeAddress, msg: "pod IP fd00:10:244::7 is an address of the node (on br1): the host delivers it to lo, not bridge cni0 (local fd00:10:244::7 dev br1, table local)"}},
			unreachable: "fd00:10:244::7",
		},
		{
			name:        "shadowed by a more specific route",
			hostCmds:    []string{"addr add 10.244.0.1/24 dev cni0", "link add cni1 type bridge", "link set cni1 up", "route add 10.244.0.0/25 dev cni1"},
			podCmds:     []string{"addr add 10.244.0.5/24 dev eth0", "route add default via 10.244.0.1"},
			ips:         []string{"10.244.0.5/24 10.244.0.1"},
			routes:      []string{"10.244.0.1"},
			want:        []expect{{code: CodeShadowed, msg: "pod IP 10.244.0.5 would leave through cni1, not bridge cni0: shadowed by 10.244.0.0/25 dev cni1, table main"}},
			unreachable: "10.244.0.5",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNode(t, tt.hostCmds, tt.podCmds)
			in := n.input(t, tt.ips...)
			in.Result.Routes = defaultRoutes(tt.routes...)
			assertFindings(t, Check(in, Options{}), tt.want)
			if tt.reachable != "" && !n.podAnswers(t, tt.reachable) {
				t.Errorf("the pod does not answer on %s from the host, but the checks passed it", tt.reachable)
			}
			if tt.unreachable != "" && n.podAnswers(t, tt.unreachable) {
				t.Errorf("the pod answers on %s from the host, but the checks refused it", tt.unreachable)
			}
		})
	}
}

// TestKernelCorruptModel removes the bridge's route from a model loaded
// from a real namespace: the model now answers "local ... dev lo", the
// kernel still EINVAL, and the disagreement is a finding carrying both.
func TestKernelCorruptModel(t *testing.T) {
	n := newNode(t, []string{"addr add 127.16.0.1/16 dev cni0"}, []string{"addr add 127.16.0.2/16 dev eth0"})
	in := n.input(t, "127.16.0.2/16 127.16.0.1")
	bridgeNet := netip.MustParsePrefix("127.16.0.0/16")
	if err := in.Host.Apply(fib.DelRoute{Route: fib.Route{Dst: bridgeNet, NextHops: []fib.NextHop{{Link: "cni0"}}}}); err != nil {
		t.Fatal(err)
	}

	got := Check(in, Options{Disabled: map[Code]bool{CodeGateway: true, CodePodReserved: true, CodeGatewayBad: true}})
	assertFindings(t, got, []expect{
		{code: CodeHostLoopback, msg: "pod IP 127.16.0.2 would be delivered to lo, not bridge cni0 (local 127.0.0.0/8 dev lo, table local)"},
		{code: CodeModelKernel, sev: SeverityWarning, msg: `model and kernel disagree on the host's route to pod IP 127.16.0.2: model "local 127.16.0.2 dev lo src 127.0.0.1", kernel "127.16.0.2: EINVAL (invalid argument)"`},
	})
	for _, f := range got {
		if f.Code == CodeModelKernel && !strings.Contains(strings.Join(f.Trace, "\n"), "local 127.0.0.0/8 dev lo") {
			t.Errorf("FG040 trace does not show the model's route: %q", f.Trace)
		}
	}
}

// TestKernelResultOfOtherVersion makes sure the checks take a result as
// the plugin hands it over after conversion: older CNI versions carry the
// same addresses.
func TestKernelResultOfOtherVersion(t *testing.T) {
	n := newNode(t, []string{"addr add 10.244.0.1/24 dev cni0"}, []string{"addr add 10.244.0.5/24 dev eth0", "route add default via 10.244.0.1"})
	in := n.input(t, "10.244.0.5/24 10.244.0.1")
	old, err := in.Result.GetAsVersion("0.3.1")
	if err != nil {
		t.Fatalf("as 0.3.1: %v", err)
	}
	back, err := current.NewResultFromResult(old)
	if err != nil {
		t.Fatalf("back to %s: %v", current.ImplementedSpecVersion, err)
	}
	in.Result = back
	assertFindings(t, Check(in, Options{}), nil)
}
