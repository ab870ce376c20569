package plan

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"

	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/internal/examplenode"
)

// conflist wraps plugin entries (JSON objects) in a conflist.
func conflist(version string, plugins ...string) string {
	return fmt.Sprintf(`{"cniVersion": %q, "name": "test", "plugins": [%s]}`, version, strings.Join(plugins, ","))
}

// bridgeHL is a bridge entry with host-local on the given ranges (JSON).
func bridgeHL(extra, ranges string) string {
	return fmt.Sprintf(`{"type": "bridge", %s "ipam": {"type": "host-local", "ranges": %s}}`, extra, ranges)
}

func simulate(t *testing.T, node *fib.Model, conf string) *Plan {
	t.Helper()
	list, err := libcni.ConfListFromBytes([]byte(conf))
	if err != nil {
		t.Fatalf("parse conflist: %v\n%s", err, conf)
	}
	p, err := Simulate(node, list, Options{})
	if err != nil {
		t.Fatalf("Simulate: %v\n%s", err, conf)
	}
	return p
}

// addrsOn lists the addresses of a device as "PREFIX".
func addrsOn(m *fib.Model, dev string) []string {
	var out []string
	for a := range m.Addrs() {
		if a.Link == dev {
			out = append(out, a.Prefix.String())
		}
	}
	return out
}

// routesOn lists the main-table routes through a device, as `ip route`
// prints them.
func routesOn(m *fib.Model, dev string) []string {
	var out []string
	for r := range m.Routes() {
		if r.Table == fib.TableMain && r.Dev() == dev {
			out = append(out, r.String())
		}
	}
	return out
}

func TestSimulateAddressing(t *testing.T) {
	tests := []struct {
		name string
		conf string
		// host: device -> addresses; pod: eth0's addresses.
		hostIface  string
		hostAddrs  []string
		hostRoutes []string
		podAddrs   []string
		gateways   []string
		podRoutes  []string
	}{
		{
			name:       "bridge gets the gateway with the subnet's prefix, pod the next address",
			conf:       conflist("1.0.0", bridgeHL(`"isGateway": true, "isDefaultGateway": true,`, `[[{"subnet": "10.244.0.0/24"}]]`)),
			hostIface:  "cni0",
			hostAddrs:  []string{"10.244.0.1/24"},
			hostRoutes: []string{"10.244.0.0/24 dev cni0 table main proto kernel scope link src 10.244.0.1"},
			podAddrs:   []string{"10.244.0.2/24"},
			gateways:   []string{"10.244.0.1"},
			podRoutes: []string{
				"10.244.0.0/24 dev eth0 table main proto kernel scope link src 10.244.0.2",
				"default via 10.244.0.1 dev eth0 table main proto boot",
			},
		},
		{
			name:      "bridge without isGateway has no address; the gateway is still host-local's",
			conf:      conflist("1.0.0", bridgeHL(`"bridge": "br-test",`, `[[{"subnet": "10.244.0.0/24"}]]`)),
			hostIface: "br-test",
			podAddrs:  []string{"10.244.0.2/24"},
			gateways:  []string{"10.244.0.1"},
			podRoutes: []string{"10.244.0.0/24 dev eth0 table main proto kernel scope link src 10.244.0.2"},
		},
		{
			name:       "rangeStart is the first address handed out",
			conf:       conflist("1.0.0", bridgeHL(`"isGateway": true,`, `[[{"subnet": "10.244.0.0/24", "rangeStart": "10.244.0.10"}]]`)),
			hostIface:  "cni0",
			hostAddrs:  []string{"10.244.0.1/24"},
			hostRoutes: []string{"10.244.0.0/24 dev cni0 table main proto kernel scope link src 10.244.0.1"},
			podAddrs:   []string{"10.244.0.10/24"},
			gateways:   []string{"10.244.0.1"},
			podRoutes:  []string{"10.244.0.0/24 dev eth0 table main proto kernel scope link src 10.244.0.10"},
		},
		{
			name:       "rangeStart on the gateway skips it",
			conf:       conflist("1.0.0", bridgeHL(`"isGateway": true,`, `[[{"subnet": "10.244.0.0/24", "rangeStart": "10.244.0.10", "gateway": "10.244.0.10"}]]`)),
			hostIface:  "cni0",
			hostAddrs:  []string{"10.244.0.10/24"},
			hostRoutes: []string{"10.244.0.0/24 dev cni0 table main proto kernel scope link src 10.244.0.10"},
			podAddrs:   []string{"10.244.0.11/24"},
			gateways:   []string{"10.244.0.10"},
			podRoutes:  []string{"10.244.0.0/24 dev eth0 table main proto kernel scope link src 10.244.0.11"},
		},
		{
			name:       "the first range of a set is used first, old-style subnet",
			conf:       conflist("0.3.1", `{"type": "bridge", "isGateway": true, "ipam": {"type": "host-local", "subnet": "10.1.0.0/16", "rangeStart": "10.1.5.0", "rangeEnd": "10.1.5.9", "routes": [{"dst": "0.0.0.0/0"}]}}`),
			hostIface:  "cni0",
			hostAddrs:  []string{"10.1.0.1/16"},
			hostRoutes: []string{"10.1.0.0/16 dev cni0 table main proto kernel scope link src 10.1.0.1"},
			podAddrs:   []string{"10.1.5.0/16"},
			gateways:   []string{"10.1.0.1"},
			podRoutes: []string{
				"10.1.0.0/16 dev eth0 table main proto kernel scope link src 10.1.5.0",
				"default via 10.1.0.1 dev eth0 table main proto boot",
			},
		},
		{
			name:       "IPv6 bridge",
			conf:       conflist("1.0.0", bridgeHL(`"isGateway": true, "isDefaultGateway": true,`, `[[{"subnet": "fd00:10:244::/64"}]]`)),
			hostIface:  "cni0",
			hostAddrs:  []string{"fd00:10:244::1/64"},
			hostRoutes: []string{"fd00:10:244::/64 dev cni0 table main proto kernel metric 256"},
			podAddrs:   []string{"fd00:10:244::2/64"},
			gateways:   []string{"fd00:10:244::1"},
			podRoutes: []string{
				"fd00:10:244::/64 dev eth0 table main proto kernel metric 256",
				"default via fd00:10:244::1 dev eth0 table main proto boot metric 1024",
			},
		},
		{
			name:      "dual-stack bridge: one address per family, a default route per family",
			conf:      conflist("1.0.0", bridgeHL(`"isDefaultGateway": true,`, `[[{"subnet": "10.244.0.0/24"}], [{"subnet": "fd00:10:244::/64"}]]`)),
			hostIface: "cni0",
			hostAddrs: []string{"10.244.0.1/24", "fd00:10:244::1/64"},
			hostRoutes: []string{
				"10.244.0.0/24 dev cni0 table main proto kernel scope link src 10.244.0.1",
				"fd00:10:244::/64 dev cni0 table main proto kernel metric 256",
			},
			podAddrs: []string{"10.244.0.2/24", "fd00:10:244::2/64"},
			gateways: []string{"10.244.0.1", "fd00:10:244::1"},
			podRoutes: []string{
				"10.244.0.0/24 dev eth0 table main proto kernel scope link src 10.244.0.2",
				"fd00:10:244::/64 dev eth0 table main proto kernel metric 256",
				"default via 10.244.0.1 dev eth0 table main proto boot",
				"default via fd00:10:244::1 dev eth0 table main proto boot metric 1024",
			},
		},
		{
			name:      "ptp: gateway /32 on the host veth, a scope host route to the pod, all pod traffic via the gateway",
			conf:      conflist("0.3.1", `{"type": "ptp", "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}], "ranges": [[{"subnet": "10.244.0.0/24"}]]}}`),
			hostIface: DefaultHostVeth,
			hostAddrs: []string{"10.244.0.1/32"},
			hostRoutes: []string{
				"10.244.0.2 dev " + DefaultHostVeth + " table main proto boot scope host",
			},
			podAddrs: []string{"10.244.0.2/24"},
			gateways: []string{"10.244.0.1"},
			podRoutes: []string{
				"default via 10.244.0.1 dev eth0 table main proto boot",
				"10.244.0.1 dev eth0 table main proto boot scope link src 10.244.0.2",
				"10.244.0.0/24 via 10.244.0.1 dev eth0 table main proto boot src 10.244.0.2",
			},
		},
		{
			name:      "ptp IPv6",
			conf:      conflist("1.0.0", `{"type": "ptp", "ipam": {"type": "host-local", "ranges": [[{"subnet": "fd00:10:244::/64"}]]}}`),
			hostIface: DefaultHostVeth,
			hostAddrs: []string{"fd00:10:244::1/128"},
			hostRoutes: []string{
				"fd00:10:244::1 dev " + DefaultHostVeth + " table main proto kernel metric 256",
				"fd00:10:244::2 dev " + DefaultHostVeth + " table main proto boot metric 1024",
			},
			podAddrs: []string{"fd00:10:244::2/64"},
			gateways: []string{"fd00:10:244::1"},
			podRoutes: []string{
				"fd00:10:244::1 dev eth0 table main proto boot src fd00:10:244::2 metric 1024",
				"fd00:10:244::/64 via fd00:10:244::1 dev eth0 table main proto boot src fd00:10:244::2 metric 1024",
			},
		},
		{
			name:       "static IPAM on a bridge: isGateway computes the gateway",
			conf:       conflist("1.0.0", `{"type": "bridge", "bridge": "br0", "isGateway": true, "ipam": {"type": "static", "addresses": [{"address": "192.168.5.10/24"}], "routes": [{"dst": "10.96.0.0/12"}]}}`),
			hostIface:  "br0",
			hostAddrs:  []string{"192.168.5.1/24"},
			hostRoutes: []string{"192.168.5.0/24 dev br0 table main proto kernel scope link src 192.168.5.1"},
			podAddrs:   []string{"192.168.5.10/24"},
			gateways:   []string{"192.168.5.1"},
			podRoutes: []string{
				"192.168.5.0/24 dev eth0 table main proto kernel scope link src 192.168.5.10",
				"10.96.0.0/12 via 192.168.5.1 dev eth0 table main proto boot",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := simulate(t, examplenode.Typical(), tt.conf)
			if p.HostInterface != tt.hostIface {
				t.Errorf("host interface %q, want %q", p.HostInterface, tt.hostIface)
			}
			check := func(what string, got, want []string) {
				t.Helper()
				if !slices.Equal(got, want) {
					t.Errorf("%s:\n got  %q\n want %q", what, got, want)
				}
			}
			check("host addresses of "+tt.hostIface, addrsOn(p.Host, tt.hostIface), tt.hostAddrs)
			check("host routes through "+tt.hostIface, routesOn(p.Host, tt.hostIface), tt.hostRoutes)
			check("pod addresses", addrsOn(p.Pod, "eth0"), tt.podAddrs)
			check("pod routes", routesOn(p.Pod, "eth0"), tt.podRoutes)
			var ips, gws []string
			for _, ipc := range p.Result.IPs {
				ips = append(ips, ipc.Address.String())
				gws = append(gws, ipc.Gateway.String())
				if ipc.Interface == nil || p.Result.Interfaces[*ipc.Interface].Sandbox == "" {
					t.Errorf("result IP %s is not on the pod's interface: %+v", ipc.Address.String(), p.Result.Interfaces)
				}
			}
			check("result IPs", ips, tt.podAddrs)
			check("result gateways", gws, tt.gateways)
		})
	}
}

// TestSimulateWhatIf checks that the simulated node answers lookups as the
// kernel would after the plugins ran, and that the node given is untouched.
func TestSimulateWhatIf(t *testing.T) {
	tests := []struct {
		name string
		conf string
		dst  string
		want string
	}{
		{"healthy bridge", conflist("1.0.0", bridgeHL(`"isGateway": true,`, `[[{"subnet": "10.244.0.0/24"}]]`)), "10.244.0.2", "10.244.0.2 dev cni0 src 10.244.0.1"},
		{"loopback bridge is refused", conflist("1.0.0", bridgeHL(`"isGateway": true,`, `[[{"subnet": "127.16.0.0/16"}]]`)), "127.16.0.2", "127.16.0.2: EINVAL (invalid argument)"},
		{"pod subnet equal to the node's goes out eth0", conflist("1.0.0", bridgeHL(`"isGateway": true,`, `[[{"subnet": "10.0.0.0/24", "gateway": "10.0.0.254", "rangeStart": "10.0.0.100"}]]`)), "10.0.0.100", "10.0.0.100 dev eth0 src 10.0.0.10"},
		{"ptp pod", conflist("1.0.0", `{"type": "ptp", "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]]}}`), "10.244.0.2", "10.244.0.2 dev " + DefaultHostVeth + " src 10.244.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := examplenode.Typical()
			before := fmt.Sprint(node.State())
			p := simulate(t, node, tt.conf)
			if after := fmt.Sprint(node.State()); after != before {
				t.Errorf("Simulate changed the node model:\n before %s\n after  %s", before, after)
			}
			res, err := p.Host.Lookup(fib.Query{Dst: netip.MustParseAddr(tt.dst)})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.String(); got != tt.want {
				t.Errorf("host lookup %s = %q, want %q", tt.dst, got, tt.want)
			}
		})
	}
}

func TestSimulatePlugins(t *testing.T) {
	conf := conflist("1.0.0",
		`{"type": "tuning"}`,
		bridgeHL(`"isGateway": true,`, `[[{"subnet": "10.244.0.0/24"}]]`),
		`{"type": "portmap", "capabilities": {"portMappings": true}}`,
		`{"type": "fibguard", "mode": "enforce"}`)
	p := simulate(t, examplenode.Typical(), conf)
	var got []string
	for _, pl := range p.Plugins {
		got = append(got, fmt.Sprintf("%s:%v", pl.Type, pl.Simulated))
	}
	want := []string{"tuning:false", "bridge:true", "portmap:false", "fibguard:false"}
	if !slices.Equal(got, want) {
		t.Errorf("plugins %q, want %q", got, want)
	}
	if len(p.Actions) == 0 || p.Actions[0].Command != "link add cni0 type bridge; link set cni0 up" {
		t.Errorf("first action %+v, want the bridge's creation", p.Actions)
	}
}

// TestSimulateVersions checks that the result reaches the next plugin
// intact in every supported cniVersion: the pod's interface, its gateway.
func TestSimulateVersions(t *testing.T) {
	for _, v := range []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
		t.Run(v, func(t *testing.T) {
			p := simulate(t, examplenode.Typical(), conflist(v, bridgeHL(`"isDefaultGateway": true,`, `[[{"subnet": "10.244.0.0/24"}]]`)))
			if len(p.Result.IPs) != 1 || p.Result.IPs[0].Interface == nil || *p.Result.IPs[0].Interface != 2 {
				t.Fatalf("result IPs %+v: want one on interface 2", p.Result.IPs)
			}
			if p.Result.Interfaces[2].Sandbox != DefaultNetns || p.Result.IPs[0].Gateway.String() != "10.244.0.1" {
				t.Errorf("result %s: want eth0 in %s, gateway 10.244.0.1", p.Result, DefaultNetns)
			}
		})
	}
}

// TestSimulateLayer2 checks a bridge without IPAM: interfaces, no address.
func TestSimulateLayer2(t *testing.T) {
	p := simulate(t, examplenode.Typical(), conflist("1.0.0", `{"type": "bridge", "bridge": "l2br"}`))
	if len(p.Result.IPs) != 0 || len(p.Result.Interfaces) != 3 || p.Result.Interfaces[2].Sandbox == "" {
		t.Errorf("result %s: want bridge, host veth and the pod's eth0, no IPs", p.Result)
	}
	if got := addrsOn(p.Host, "l2br"); len(got) != 0 {
		t.Errorf("l2br has addresses %q, want none", got)
	}
	if l, ok := p.Pod.Link("eth0"); !ok || !l.Up {
		t.Errorf("pod eth0 %+v: want it up", l)
	}
}

func TestSimulateExistingBridge(t *testing.T) {
	conf := conflist("1.0.0", bridgeHL(`"isGateway": true,`, `[[{"subnet": "10.244.0.0/24"}]]`))
	// A node where an earlier pod already set the bridge up: same result,
	// no second address, no second link.
	node := simulate(t, examplenode.Typical(), conf).Host
	p := simulate(t, node, conf)
	if got := addrsOn(p.Host, "cni0"); !slices.Equal(got, []string{"10.244.0.1/24"}) {
		t.Errorf("cni0 addresses %q, want only 10.244.0.1/24", got)
	}
	if p.HostInterface != "cni0" {
		t.Errorf("host interface %q", p.HostInterface)
	}
	if _, ok := p.Host.Link(DefaultHostVeth + "1"); !ok {
		t.Errorf("second pod's veth: want %s1 beside %s", DefaultHostVeth, DefaultHostVeth)
	}

	// A bridge left without ports has no carrier and its routes are
	// linkdown; the pod's veth gives it carrier back.
	node = examplenode.Typical()
	if err := node.Apply(
		fib.AddLink{Link: fib.Link{Name: "cni0", Kind: fib.KindBridge, Up: true}},
		fib.AddAddress{Address: fib.Address{Prefix: netip.MustParsePrefix("10.244.0.1/24"), Link: "cni0"}},
	); err != nil {
		t.Fatal(err)
	}
	p = simulate(t, node, conf)
	if got := routesOn(p.Host, "cni0"); !slices.Equal(got, []string{"10.244.0.0/24 dev cni0 table main proto kernel scope link src 10.244.0.1"}) {
		t.Errorf("cni0 routes %q, want the subnet route without linkdown", got)
	}
	if l, _ := node.Link("cni0"); l.Carrier {
		t.Error("Simulate gave the node's own bridge carrier")
	}
}

func TestSimulateErrors(t *testing.T) {
	hl := func(ranges string) string { return bridgeHL(`"isGateway": true,`, ranges) }
	withBridge := func(kind fib.LinkKind, addr string) *fib.Model {
		m := examplenode.Typical()
		changes := []fib.Change{fib.AddLink{Link: fib.Link{Name: "cni0", Kind: kind, Up: true, Carrier: true}}}
		if addr != "" {
			changes = append(changes, fib.AddAddress{Address: fib.Address{Prefix: netip.MustParsePrefix(addr), Link: "cni0"}})
		}
		if err := m.Apply(changes...); err != nil {
			t.Fatal(err)
		}
		return m
	}
	tests := []struct {
		name string
		node *fib.Model
		conf string
		want string
		is   error
	}{
		{"no interface plugin", nil, conflist("1.0.0", `{"type": "portmap"}`, `{"type": "fibguard"}`), "", ErrNoInterfacePlugin},
		{"unknown IPAM", nil, conflist("1.0.0", `{"type": "bridge", "ipam": {"type": "dhcp"}}`), `ipam "dhcp" is not simulated`, nil},
		{"subnet too small", nil, conflist("1.0.0", hl(`[[{"subnet": "10.244.0.0/31"}]]`)), "too small to allocate from", nil},
		{"subnet with host bits", nil, conflist("1.0.0", hl(`[[{"subnet": "10.244.0.5/24"}]]`)), "host bits set", nil},
		{"gateway outside", nil, conflist("1.0.0", hl(`[[{"subnet": "10.244.0.0/24", "gateway": "10.245.0.1"}]]`)), "gateway 10.245.0.1 not in network 10.244.0.0/24", nil},
		{"rangeStart after rangeEnd", nil, conflist("1.0.0", hl(`[[{"subnet": "10.244.0.0/24", "rangeStart": "10.244.0.9", "rangeEnd": "10.244.0.8"}]]`)), "not in network", nil},
		{"range of only the gateway", nil, conflist("1.0.0", hl(`[[{"subnet": "10.244.0.0/24", "rangeStart": "10.244.0.1", "rangeEnd": "10.244.0.1"}]]`)), "no IP addresses available", nil},
		{"overlapping range sets", nil, conflist("1.0.0", hl(`[[{"subnet": "10.244.0.0/24"}], [{"subnet": "10.244.0.0/16"}]]`)), "range set 0 overlaps with 1", nil},
		{"no ranges", nil, conflist("1.0.0", hl(`[]`)), "no IP ranges specified", nil},
		{"two IPv4 gateways on one bridge", nil, conflist("1.0.0", hl(`[[{"subnet": "10.244.0.0/24"}], [{"subnet": "10.245.0.0/24"}]]`)), `"cni0" already has an IP address different from 10.245.0.1/24`, nil},
		{"bridge already has another address", withBridge(fib.KindBridge, "10.9.0.1/24"), conflist("1.0.0", hl(`[[{"subnet": "10.244.0.0/24"}]]`)), `"cni0" already has an IP address different from 10.244.0.1/24`, nil},
		{"bridge name taken by another kind", withBridge(fib.KindOther, ""), conflist("1.0.0", hl(`[[{"subnet": "10.244.0.0/24"}]]`)), `"cni0" already exists but is not a bridge`, nil},
		{"two interface plugins", nil, conflist("1.0.0", hl(`[[{"subnet": "10.244.0.0/24"}]]`), `{"type": "ptp", "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.245.0.0/24"}]]}}`), "second interface plugin", nil},
		{"ptp without a gateway", nil, conflist("1.0.0", `{"type": "ptp", "ipam": {"type": "static", "addresses": [{"address": "10.1.0.5/24"}]}}`), "no gateway", nil},
		{"ptp with a /32", nil, conflist("1.0.0", `{"type": "ptp", "ipam": {"type": "static", "addresses": [{"address": "10.1.0.5/32", "gateway": "10.1.0.1"}]}}`), "failed to delete route", nil},
		{"static with a bad address", nil, conflist("1.0.0", `{"type": "bridge", "ipam": {"type": "static", "addresses": [{"address": "10.1.0.5"}]}}`), "CIDR notation", nil},
		{"static with no address", nil, conflist("1.0.0", `{"type": "bridge", "ipam": {"type": "static"}}`), "IPAM plugin returned missing IP config", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := tt.node
			if node == nil {
				node = examplenode.Typical()
			}
			list, err := libcni.ConfListFromBytes([]byte(tt.conf))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			p, err := Simulate(node, list, Options{})
			if err == nil {
				t.Fatalf("Simulate succeeded (%+v), want an error", p.Plugins)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v, want %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to say %q", err, tt.want)
			}
		})
	}
}
