package integration

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/fibguard/fibguard/internal/nstest"
)

// assertMatchesKernel checks a chain's result against the kernel: each
// host-side interface exists in the host namespace with the result's MAC,
// and not in the machine's namespace (the plugins ran inside the host
// namespace); each sandbox interface exists in the pod namespace with the
// result's MAC and carries the result's addresses.
func assertMatchesKernel(t *testing.T, w *world, p *pod, res *current.Result) {
	t.Helper()
	host := mustLinks(t, w.host)
	pods := mustLinks(t, p.ns)
	machine := mustLinks(t, nil)
	for i, iface := range res.Interfaces {
		var in map[string]link
		switch iface.Sandbox {
		case "":
			in = host
			if _, ok := machine[iface.Name]; ok {
				t.Errorf("interface %d %s exists in the machine's namespace: a plugin ran outside the test's host namespace", i, iface.Name)
			}
		case p.ns.Path():
			in = pods
		default:
			t.Errorf("interface %d %s: sandbox %q is not the pod's %q", i, iface.Name, iface.Sandbox, p.ns.Path())
			continue
		}
		l, ok := in[iface.Name]
		switch {
		case !ok:
			t.Errorf("interface %d %s (sandbox %q) does not exist in its namespace", i, iface.Name, iface.Sandbox)
		case l.MAC != iface.Mac:
			t.Errorf("interface %d %s: MAC %s in the result, %s in the kernel", i, iface.Name, iface.Mac, l.MAC)
		}
	}
	for _, ipc := range res.IPs {
		iface, err := podInterface(res, ipc)
		if err != nil {
			t.Error(err)
			continue
		}
		addrs, err := addresses(p.ns, iface.Name)
		if err != nil {
			t.Error(err)
			continue
		}
		want := prefixOf(ipc)
		if !slices.Contains(addrs, want) {
			t.Errorf("pod %s has %v, not the result's %s", iface.Name, addrs, want)
		}
	}
}

// assertReachable pings every pod IP of res from the host namespace and
// checks that the pod itself answered: the host's neighbour entry for the
// IP must carry the MAC of the pod's interface.
func assertReachable(t *testing.T, w *world, res *current.Result) {
	t.Helper()
	for _, ipc := range res.IPs {
		ip := prefixOf(ipc).Addr()
		if err := w.ping(ip); err != nil {
			t.Errorf("host -> pod %s: %v", ip, err)
			continue
		}
		iface, err := podInterface(res, ipc)
		if err != nil {
			t.Error(err)
			continue
		}
		mac, err := neighbour(w.host, ip)
		if err != nil {
			t.Error(err)
			continue
		}
		if mac != iface.Mac {
			t.Errorf("host -> pod %s: answered by %s, not by the pod's %s (%s)", ip, mac, iface.Name, iface.Mac)
		}
	}
}

// normalized renders res without what differs between two runs of the same
// chain in two worlds: MACs, the random host veth name, the bridge's and
// the namespace's names. Two normalised results are equal when the chains
// returned the same addresses, routes, DNS and interface layout.
func normalized(t *testing.T, res *current.Result, w *world, p *pod) string {
	t.Helper()
	r := *res
	r.Interfaces = nil
	for _, iface := range res.Interfaces {
		c := *iface
		c.Mac = ""
		switch {
		case c.Sandbox == p.ns.Path():
			c.Sandbox = "POD-NETNS"
		case c.Name == w.bridge:
			c.Name = "BRIDGE"
		default:
			c.Name = "HOST-VETH"
		}
		r.Interfaces = append(r.Interfaces, &c)
	}
	b, err := json.MarshalIndent(&r, "", "  ")
	if err != nil {
		t.Fatalf("encoding result: %v", err)
	}
	return string(b)
}

// podInterface returns the interface an IP config belongs to, which must
// be inside the pod.
func podInterface(res *current.Result, ipc *current.IPConfig) (*current.Interface, error) {
	if ipc.Interface == nil || *ipc.Interface < 0 || *ipc.Interface >= len(res.Interfaces) {
		return nil, fmt.Errorf("IP %s: no valid interface index (%v) among %d interfaces", ipc.Address.String(), ipc.Interface, len(res.Interfaces))
	}
	iface := res.Interfaces[*ipc.Interface]
	if iface.Sandbox == "" {
		return nil, fmt.Errorf("IP %s: interface %s is not in the pod", ipc.Address.String(), iface.Name)
	}
	return iface, nil
}

// prefixOf returns an IP config's address with its prefix length.
func prefixOf(ipc *current.IPConfig) netip.Prefix {
	a, _ := netip.AddrFromSlice(ipc.Address.IP)
	ones, _ := ipc.Address.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones)
}

func mustLinks(t *testing.T, n *nstest.NS) map[string]link {
	t.Helper()
	ls, err := links(n, "")
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]link, len(ls))
	for _, l := range ls {
		m[l.Name] = l
	}
	return m
}

// vethNames lists the veth devices of a namespace.
func vethNames(t *testing.T, n *nstest.NS) []string {
	t.Helper()
	ls, err := links(n, "veth")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range ls {
		names = append(names, l.Name)
	}
	slices.Sort(names)
	return names
}

// addresses lists the addresses of a device.
func addresses(n *nstest.NS, dev string) ([]netip.Prefix, error) {
	out, err := n.IP("-j", "addr", "show", "dev", dev)
	if err != nil {
		return nil, err
	}
	var ifs []struct {
		Addrs []struct {
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(out, &ifs); err != nil {
		return nil, fmt.Errorf("ip -j addr show dev %s: %w", dev, err)
	}
	var ps []netip.Prefix
	for _, i := range ifs {
		for _, a := range i.Addrs {
			if a.Local == "" { // iproute2 prints {} for some filtered entries
				continue
			}
			addr, err := netip.ParseAddr(a.Local)
			if err != nil {
				return nil, fmt.Errorf("ip -j addr show dev %s: %w", dev, err)
			}
			ps = append(ps, netip.PrefixFrom(addr, a.PrefixLen))
		}
	}
	return ps, nil
}

// neighbour returns the link-layer address the namespace has learnt for ip.
func neighbour(n *nstest.NS, ip netip.Addr) (string, error) {
	out, err := n.IP("-j", "neigh", "show", "to", ip.String())
	if err != nil {
		return "", err
	}
	var ns []struct {
		LLAddr string `json:"lladdr"`
	}
	if err := json.Unmarshal(out, &ns); err != nil {
		return "", fmt.Errorf("ip -j neigh show to %s: %w", ip, err)
	}
	for _, e := range ns {
		if e.LLAddr != "" {
			return e.LLAddr, nil
		}
	}
	return "", fmt.Errorf("no neighbour entry for %s: %s", ip, out)
}
