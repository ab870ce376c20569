//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"path"
	"strings"
	"time"
)

// network is one pod network the suite installs as the node's primary CNI:
// bridge + host-local, as a simple CNI would write it.
type network struct {
	Name      string // the conflist's name
	Bridge    string
	Subnet    netip.Prefix
	Gateway   netip.Addr // the bridge's address when IsGateway
	IsGateway bool
	// Only, when valid, is the one address host-local hands out.
	Only netip.Addr
}

// networks of the scenarios. nodeIP is the node's InternalIP.
//
// healthyNetwork is the node's pod CIDR where the cluster allocates them
// (a cluster of several nodes: each hands out its own addresses, as a
// primary CNI does), 10.244.0.0/24 where it does not.
func (cl *cluster) healthyNetwork() network {
	subnet := netip.MustParsePrefix("10.244.0.0/24")
	if cl.podCIDR.IsValid() {
		subnet = cl.podCIDR
	}
	return network{Name: "fibguard-e2e", Bridge: "fge2e0", Subnet: subnet, Gateway: subnet.Addr().Next(), IsGateway: true}
}

// loopbackNetwork is the silent failure of the brief: a bridge on 127.16.0.0/16.
func loopbackNetwork() network {
	return network{Name: "fibguard-e2e-loopback", Bridge: "fge2e1", Subnet: netip.MustParsePrefix("127.16.0.0/16"),
		Gateway: netip.MustParseAddr("127.16.0.1"), IsGateway: true}
}

// nodeAddressNetwork hands out the node's own address. The bridge gets no
// address (isGateway false), so the node's routes stay as they were.
func nodeAddressNetwork(nodeIP netip.Addr) network {
	subnet := netip.PrefixFrom(nodeIP, 24).Masked()
	gw := subnet.Addr().Next()
	if gw == nodeIP {
		gw = gw.Next()
	}
	return network{Name: "fibguard-e2e-nodeaddr", Bridge: "fge2e2", Subnet: subnet, Gateway: gw, Only: nodeIP}
}

// shadowedNetwork is healthy by itself; the suite adds a more specific route
// (shadowRoute) that takes half of it elsewhere.
func shadowedNetwork() network {
	return network{Name: "fibguard-e2e-shadowed", Bridge: "fge2e3", Subnet: netip.MustParsePrefix("10.245.0.0/24"),
		Gateway: netip.MustParseAddr("10.245.0.1"), IsGateway: true}
}

// shadowRoute covers the first half of shadowedNetwork, where host-local
// allocates first.
const shadowRoute = "10.245.0.0/25"

// conflist renders the network as its primary CNI would write it.
func (n network) conflist(ipamDir string) []byte {
	rng := map[string]any{"subnet": n.Subnet.String(), "gateway": n.Gateway.String()}
	if n.Only.IsValid() {
		rng["rangeStart"], rng["rangeEnd"] = n.Only.String(), n.Only.String()
	}
	ipam := map[string]any{
		"type":   "host-local",
		"ranges": [][]any{{rng}},
		"routes": []any{map[string]any{"dst": "0.0.0.0/0"}},
	}
	if ipamDir != "" {
		ipam["dataDir"] = ipamDir
	}
	doc := map[string]any{
		"cniVersion": "1.0.0",
		"name":       n.Name,
		"plugins": []any{map[string]any{
			"type":      "bridge",
			"bridge":    n.Bridge,
			"isGateway": n.IsGateway,
			"ipMasq":    false,
			"ipam":      ipam,
		}},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(err) // maps of strings and slices always marshal
	}
	return append(b, '\n')
}

// writePrimary replaces the primary conflist on the node through a temporary
// file and a rename, as a CNI daemon does.
func (c config) writePrimary(ctx context.Context, content []byte) error {
	dst := path.Join(c.ConfDir, c.Primary)
	tmp := path.Join(c.ConfDir, "."+c.Primary+".e2e-tmp")
	_, err := c.onNode(ctx, content, fmt.Sprintf("cat > %s && mv -f %s %s", shellQuote(tmp), shellQuote(tmp), shellQuote(dst)))
	return err
}

func (c config) readPrimary(ctx context.Context) (string, error) {
	return c.onNode(ctx, nil, "cat "+shellQuote(path.Join(c.ConfDir, c.Primary)))
}

// runtimeNetwork asks the runtime (crictl info) which network it loaded:
// its name and plugin types. The CNI network of CRI is the one with ifname
// eth0; containerd also lists its own loopback network.
func (c config) runtimeNetwork(ctx context.Context) (string, []string, error) {
	out, err := c.onNode(ctx, nil, c.Crictl+" info")
	if err != nil {
		return "", nil, err
	}
	var info struct {
		CNIConfig struct {
			Networks []struct {
				Config struct {
					Name    string `json:"Name"`
					Plugins []struct {
						Network struct {
							Type string `json:"type"`
						} `json:"Network"`
					} `json:"Plugins"`
				} `json:"Config"`
				IFName string `json:"IFName"`
			} `json:"Networks"`
		} `json:"cniconfig"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		return "", nil, fmt.Errorf("crictl info: %w", err)
	}
	for _, n := range info.CNIConfig.Networks {
		if n.IFName != "eth0" {
			continue
		}
		var types []string
		for _, p := range n.Config.Plugins {
			types = append(types, p.Network.Type)
		}
		return n.Config.Name, types, nil
	}
	return "", nil, fmt.Errorf("crictl info lists no pod network (eth0)")
}

// switchNetwork writes n as the primary conflist and waits until the
// runtime has loaded it, with fibguard chained last when withFibguard (the
// installer re-inserts itself after the primary's rewrite) or absent.
func (c config) switchNetwork(ctx context.Context, n network, withFibguard bool) error {
	if err := c.writePrimary(ctx, n.conflist(c.IPAMDir)); err != nil {
		return err
	}
	return c.waitLoaded(ctx, n, withFibguard)
}

// waitLoaded waits until the runtime has loaded network n, with fibguard
// chained last when withFibguard, or without it.
func (c config) waitLoaded(ctx context.Context, n network, withFibguard bool) error {
	want := []string{"bridge"}
	if withFibguard {
		want = append(want, "fibguard")
	}
	err := eventually(ctx, 200*time.Millisecond, 60*time.Second, func(ctx context.Context) error {
		name, types, err := c.runtimeNetwork(ctx)
		if err != nil {
			return err
		}
		if name != n.Name || strings.Join(types, ",") != strings.Join(want, ",") {
			return fmt.Errorf("loaded %s %v", name, types)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("runtime did not load network %s with plugins %v: %w", n.Name, want, err)
	}
	return nil
}
