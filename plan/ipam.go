package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

// ipam runs the simulated IPAM plugin named in a plugin's configuration,
// returning what the real plugin would print; an IPAM type it cannot
// simulate is an error.
func (s *sim) ipam(typ string, conf []byte) (*current.Result, error) {
	switch typ {
	case "host-local":
		return hostLocal(conf)
	case "static":
		return static(conf)
	}
	return nil, fmt.Errorf("ipam %q is not simulated (host-local and static are)", typ)
}

// staticNet is the part of a configuration the static IPAM plugin reads.
type staticNet struct {
	CNIVersion string `json:"cniVersion"`
	IPAM       *struct {
		Routes    []*types.Route `json:"routes"`
		Addresses []struct {
			Address string `json:"address"`
			Gateway net.IP `json:"gateway,omitempty"`
		} `json:"addresses,omitempty"`
		DNS types.DNS `json:"dns"`
	} `json:"ipam"`
	RuntimeConfig struct {
		IPs []string `json:"ips,omitempty"`
	} `json:"runtimeConfig,omitempty"`
	Args *struct {
		A *struct {
			IPs []string `json:"ips"`
		} `json:"cni"`
	} `json:"args"`
}

// static returns what the static IPAM plugin's cmdAdd prints: the
// configured addresses (replaced by args.cni.ips, then by runtimeConfig.ips,
// when given), each with its gateway if one is set, and the routes.
func static(conf []byte) (*current.Result, error) {
	var n staticNet
	if err := json.Unmarshal(conf, &n); err != nil {
		return nil, fmt.Errorf("static: %w", err)
	}
	if n.IPAM == nil {
		return nil, errors.New("static: IPAM config missing 'ipam' key")
	}
	type entry struct {
		cidr string
		gw   net.IP
	}
	var entries []entry
	for _, a := range n.IPAM.Addresses {
		entries = append(entries, entry{a.Address, a.Gateway})
	}
	if n.Args != nil && n.Args.A != nil && len(n.Args.A.IPs) != 0 {
		entries = entries[:0]
		for _, s := range n.Args.A.IPs {
			entries = append(entries, entry{cidr: s})
		}
	}
	if len(n.RuntimeConfig.IPs) != 0 {
		entries = entries[:0]
		for _, s := range n.RuntimeConfig.IPs {
			entries = append(entries, entry{cidr: s})
		}
	}
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion, DNS: n.IPAM.DNS, Routes: n.IPAM.Routes}
	var v4, v6 int
	for _, e := range entries {
		ip, subnet, err := net.ParseCIDR(e.cidr)
		if err != nil {
			return nil, fmt.Errorf("static: the 'address' field is expected to be in CIDR notation, got: '%s'", e.cidr)
		}
		if v := ip.To4(); v != nil {
			ip = v
			v4++
		} else {
			v6++
		}
		res.IPs = append(res.IPs, &current.IPConfig{Address: net.IPNet{IP: ip, Mask: subnet.Mask}, Gateway: e.gw})
	}
	if v4 > 1 || v6 > 1 {
		if ok, _ := version.GreaterThanOrEqualTo(n.CNIVersion, "0.3.0"); !ok {
			return nil, fmt.Errorf("static: CNI version %v does not support more than 1 address per family", n.CNIVersion)
		}
	}
	return res, nil
}
