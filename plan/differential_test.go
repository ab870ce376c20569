package plan_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/fib/live"
	"github.com/fibguard/fibguard/internal/nstest"
	"github.com/fibguard/fibguard/plan"
)

// cniPlugins returns the directory of the reference plugins, from
// hack/cni-plugins.sh (which honours FIBGUARD_CNI_BIN and builds what is
// missing into its cache). The test is skipped, with the reason, when they
// cannot be had.
func cniPlugins(t *testing.T) string {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("..", "hack", "cni-plugins.sh"))
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("bash", script)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("reference CNI plugins unavailable: %s: %v: %s", script, err, bytes.TrimSpace(stderr.Bytes()))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	dir := lines[len(lines)-1]
	for _, p := range []string{"bridge", "ptp", "host-local"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Skipf("reference CNI plugins unavailable: %v", err)
		}
	}
	return dir
}

// example reads a conflist of the repository's examples.
func example(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// interfacePlugin keeps only the first plugin of a conflist, the one that
// sets up the pod's network, with host-local's store moved into dataDir
// and without ipMasq: portmap, fibguard and iptables rules are not what is
// compared.
func interfacePlugin(t *testing.T, b []byte, dataDir string) *libcni.NetworkConfigList {
	t.Helper()
	var conf struct {
		CNIVersion string           `json:"cniVersion"`
		Name       string           `json:"name"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(b, &conf); err != nil {
		t.Fatal(err)
	}
	first := conf.Plugins[0]
	ipam, ok := first["ipam"].(map[string]any)
	if !ok {
		t.Fatalf("first plugin %v has no ipam", first)
	}
	ipam["dataDir"] = dataDir
	// Masquerading needs iptables and changes no route.
	delete(first, "ipMasq")
	conf.Plugins = conf.Plugins[:1]
	b, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	list, err := libcni.ConfListFromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// settle waits for carrier changes and for IPv6 duplicate address
// detection, after which the kernel's addresses and routes stay put.
func settle(t *testing.T, n *nstest.NS) {
	t.Helper()
	if err := n.Settle(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := n.IP("-6", "addr", "show", "tentative")
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(out)) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("IPv6 addresses still tentative:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDifferential runs example conflists (without fibguard) through libcni
// and the real plugins in namespaces the test owns, simulates the same on a
// model of the host namespace as it was before, and compares: the pod's
// addresses and gateways, the addresses of the pod's host-side interface,
// the host's routes into the pod networks (every table), the pod's routes,
// and the host's lookup of each pod IP against the kernel's answer.
func TestDifferential(t *testing.T) {
	bin := cniPlugins(t)
	tests := []struct {
		name string
		conf []byte
	}{
		{"healthy-bridge", example(t, "healthy-bridge.conflist")},
		{"ptp-kindnet", example(t, "ptp-kindnet.conflist")},
		{"dualstack", example(t, "dualstack.conflist")},
		{"ipv6", example(t, "ipv6.conflist")},
		{"bridge with rangeStart on the gateway and a route", []byte(`{"cniVersion": "1.0.0", "name": "ranges", "plugins": [{"type": "bridge", "bridge": "br-diff", "isGateway": true,
			"ipam": {"type": "host-local", "ranges": [[{"subnet": "10.245.0.0/16", "rangeStart": "10.245.3.7", "rangeEnd": "10.245.3.9", "gateway": "10.245.3.7"}]], "routes": [{"dst": "10.96.0.0/12"}]}}]}`)},
		{"dual-stack ptp", []byte(`{"cniVersion": "1.0.0", "name": "ptp6", "plugins": [{"type": "ptp",
			"ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}], [{"subnet": "fd00:10:244::/64"}]], "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]}}]}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := nstest.NewWithLoUp(t)
			pod := nstest.NewWithLoUp(t)
			if err := host.Batch([]string{
				"link add eth0 type veth peer name eth0p",
				"link set eth0 up",
				"link set eth0p up",
				"addr add 10.0.0.10/24 dev eth0",
				"route add default via 10.0.0.1 dev eth0",
			}); err != nil {
				t.Fatal(err)
			}
			settle(t, host)
			node, err := live.Load(host.Path())
			if err != nil {
				t.Fatal(err)
			}

			list := interfacePlugin(t, tt.conf, t.TempDir())
			cni := libcni.NewCNIConfigWithCacheDir([]string{bin}, t.TempDir(), nil)
			rt := &libcni.RuntimeConf{ContainerID: "fibguard-diff", NetNS: pod.Path(), IfName: "eth0"}
			var real *current.Result
			err = ns.WithNetNSPath(host.Path(), func(ns.NetNS) error {
				r, err := cni.AddNetworkList(context.Background(), list, rt)
				if err != nil {
					return err
				}
				real, err = current.NewResultFromResult(r)
				return err
			})
			if err != nil {
				t.Fatalf("ADD through libcni: %v", err)
			}
			settle(t, host)
			settle(t, pod)
			realHost, err := live.Load(host.Path())
			if err != nil {
				t.Fatal(err)
			}
			realPod, err := live.Load(pod.Path())
			if err != nil {
				t.Fatal(err)
			}

			p, err := plan.Simulate(node, list, plan.Options{ContainerID: rt.ContainerID, IfName: "eth0", Netns: pod.Path(), HostVeth: hostVeth(real)})
			if err != nil {
				t.Fatalf("Simulate: %v", err)
			}
			same := func(what string, sim, kernel []string) {
				t.Helper()
				if len(kernel) == 0 {
					t.Errorf("%s: the real plugins configured none: nothing compared", what)
				}
				if !slices.Equal(sim, kernel) {
					t.Errorf("%s differ:\n simulated %q\n real      %q", what, sim, kernel)
				}
			}
			same("result IPs", ipConfigs(p.Result), ipConfigs(real))
			same("result routes", routes(p.Result), routes(real))
			same("interfaces", ifaces(p.Result), ifaces(real))
			same("addresses of "+p.HostInterface, addrs(p.Host, p.HostInterface), addrs(realHost, p.HostInterface))
			subnets := podSubnets(real)
			same("host routes into "+fmt.Sprint(subnets), routesInto(p.Host, subnets), routesInto(realHost, subnets))
			same("pod addresses", addrs(p.Pod, "eth0"), addrs(realPod, "eth0"))
			same("pod routes", podRoutes(p.Pod), podRoutes(realPod))
			for _, ipc := range real.IPs {
				q := fib.Query{Dst: netip.MustParseAddr(ipc.Address.IP.String()).Unmap()}
				model, err := p.Host.Lookup(q)
				if err != nil {
					t.Fatal(err)
				}
				kernel, err := live.RouteGet(host.Path(), q)
				if err != nil {
					t.Fatal(err)
				}
				if d := model.Diff(&kernel); len(d) > 0 {
					t.Errorf("host lookup of %s: simulated %s, kernel %s: %q", q.Dst, model.String(), kernel.String(), d)
				}
			}
		})
	}
}

// hostVeth is the name of the host end of the pod's veth in a result.
func hostVeth(r *current.Result) string {
	for _, i := range r.Interfaces {
		if i.Sandbox == "" && strings.HasPrefix(i.Name, "veth") {
			return i.Name
		}
	}
	return ""
}

func ipConfigs(r *current.Result) []string {
	var out []string
	for _, ipc := range r.IPs {
		out = append(out, fmt.Sprintf("%s gw %s if %d", ipc.Address.String(), ipc.Gateway, *ipc.Interface))
	}
	return out
}

func routes(r *current.Result) []string {
	var out []string
	for _, rt := range r.Routes {
		out = append(out, rt.String())
	}
	return out
}

// ifaces lists a result's interfaces by name and sandbox; MAC addresses
// are not simulated.
func ifaces(r *current.Result) []string {
	var out []string
	for _, i := range r.Interfaces {
		out = append(out, i.Name+" "+i.Sandbox)
	}
	return out
}

// isLinkLocal6 is fe80::/10, which the kernel adds by itself and the
// simulation does not model.
func isLinkLocal6(p netip.Prefix) bool {
	return p.Addr().Is6() && p.Addr().IsLinkLocalUnicast()
}

// addrs lists a device's addresses, sorted, without IPv6 link-local ones.
func addrs(m *fib.Model, dev string) []string {
	var out []string
	for a := range m.Addrs() {
		if a.Link == dev && !isLinkLocal6(a.Prefix) {
			out = append(out, a.Prefix.String())
		}
	}
	slices.Sort(out)
	return out
}

func podSubnets(r *current.Result) []netip.Prefix {
	var out []netip.Prefix
	for _, ipc := range r.IPs {
		ones, _ := ipc.Address.Mask.Size()
		out = append(out, netip.PrefixFrom(netip.MustParseAddr(ipc.Address.IP.String()).Unmap(), ones).Masked())
	}
	return out
}

// routesInto lists the routes of every table whose destination lies in one
// of the subnets, sorted.
func routesInto(m *fib.Model, subnets []netip.Prefix) []string {
	var out []string
	for r := range m.Routes() {
		for _, s := range subnets {
			if s.Overlaps(r.Dst) && r.Dst.Bits() >= s.Bits() {
				out = append(out, r.String())
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// podRoutes lists the pod's routes through eth0 in every table, sorted,
// without the IPv6 link-local and multicast ones the kernel adds itself.
func podRoutes(m *fib.Model) []string {
	var out []string
	for r := range m.Routes() {
		if r.Dev() != "eth0" || isLinkLocal6(r.Dst) || r.Dst.Addr().IsMulticast() {
			continue
		}
		out = append(out, r.String())
	}
	slices.Sort(out)
	return out
}
