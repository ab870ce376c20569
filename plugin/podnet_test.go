package plugin

import (
	"encoding/json"
	"fmt"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/fibguard/fibguard/internal/nstest"
)

// podNet is a "host" and a "pod" namespace wired the way the bridge
// plugin wires them — a bridge with the gateway address, a veth pair with
// one end on the bridge and the other, eth0, in the pod with the pod's
// address and a default route — and the result the bridge plugin would
// have returned for it.
type podNet struct {
	host, pod *nstest.NS
	result    *current.Result
}

// newBridgePodNet builds a podNet with gateway gw and pod address
// podAddr, both in CIDR notation ("10.22.0.1/24", "10.22.0.2/24").
func newBridgePodNet(t testing.TB, gw, podAddr string) *podNet {
	t.Helper()
	host, pod := nstest.NewWithLoUp(t), nstest.NewWithLoUp(t)
	gwIP, _, err := net.ParseCIDR(gw)
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Batch([]string{
		"link add cni0 type bridge",
		"link set cni0 up",
		"addr add " + gw + " dev cni0",
		"link add veth0a1b type veth peer name eth0 netns " + pod.Name(),
		"link set veth0a1b master cni0",
		"link set veth0a1b up",
	}); err != nil {
		t.Fatalf("wire host: %v", err)
	}
	if err := pod.Batch([]string{
		"link set eth0 up",
		"addr add " + podAddr + " dev eth0",
		"route add default via " + gwIP.String() + " dev eth0",
	}); err != nil {
		t.Fatalf("wire pod: %v", err)
	}
	for _, n := range []*nstest.NS{host, pod} {
		if err := n.Settle(5 * time.Second); err != nil {
			t.Fatalf("settle %s: %v", n.Name(), err)
		}
	}
	podIP, err := types.ParseCIDR(podAddr)
	if err != nil {
		t.Fatal(err)
	}
	_, anyDst, _ := net.ParseCIDR("0.0.0.0/0")
	return &podNet{host: host, pod: pod, result: &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{
			{Name: "cni0", Mac: mac(t, host, "cni0")},
			{Name: "veth0a1b", Mac: mac(t, host, "veth0a1b")},
			{Name: "eth0", Mac: mac(t, pod, "eth0"), Sandbox: pod.Path()},
		},
		IPs:    []*current.IPConfig{{Address: *podIP, Gateway: gwIP, Interface: current.Int(2)}},
		Routes: []*types.Route{{Dst: *anyDst, GW: gwIP}},
	}}
}

// mac reads a link's hardware address.
func mac(t testing.TB, n *nstest.NS, dev string) string {
	t.Helper()
	out, err := n.IP("-j", "link", "show", "dev", dev)
	if err != nil {
		t.Fatal(err)
	}
	var links []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -j link show dev %s: %v: %s", dev, err, out)
	}
	return links[0].Address
}

// prevResult is the result in cniVersion v, as a JSON value for confJSON.
func (pn *podNet) prevResult(t testing.TB, v string) json.RawMessage {
	t.Helper()
	r, err := pn.result.GetAsVersion(v)
	if err != nil {
		t.Fatalf("result as %s: %v", v, err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameJSON reports whether two JSON documents hold the same value.
func sameJSON(a, b []byte) (bool, error) {
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		return false, fmt.Errorf("decode %s: %w", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		return false, fmt.Errorf("decode %s: %w", b, err)
	}
	return reflect.DeepEqual(va, vb), nil
}
