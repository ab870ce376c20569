package plan

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/internal/netipx"
)

// bridgeConf is the part of the bridge plugin's configuration that decides
// addressing.
type bridgeConf struct {
	types.NetConf
	BrName                    string `json:"bridge"`
	IsGW                      bool   `json:"isGateway"`
	IsDefaultGW               bool   `json:"isDefaultGateway"`
	ForceAddress              bool   `json:"forceAddress"`
	Vlan                      int    `json:"vlan"`
	DisableContainerInterface bool   `json:"disableContainerInterface,omitempty"`
}

// bridge simulates the bridge plugin's cmdAdd: the bridge (cni0 unless
// named) up, a veth pair with the host end enslaved to it, the IPAM result
// on the pod's end with its routes, and with isGateway each range's gateway
// on the bridge with the range's prefix length (so the kernel adds the
// subnet's route through the bridge) and IPv4 forwarding on.
// isDefaultGateway implies isGateway and adds a default route per family
// through the gateway unless IPAM already gave one.
func (s *sim) bridge(conf []byte) error {
	n := bridgeConf{BrName: "cni0"}
	if err := json.Unmarshal(conf, &n); err != nil {
		return fmt.Errorf("failed to load netconf: %w", err)
	}
	if n.Vlan < 0 || n.Vlan > 4094 {
		return fmt.Errorf("invalid VLAN ID %d (must be between 0 and 4094)", n.Vlan)
	}
	isL3 := n.IPAM.Type != ""
	if isL3 && n.DisableContainerInterface {
		return fmt.Errorf("cannot use IPAM when DisableContainerInterface flag is set")
	}
	if n.IsDefaultGW {
		n.IsGW = true
	}
	if n.IsGW && n.Vlan != 0 {
		return fmt.Errorf("isGateway with vlan %d puts the gateway on a VLAN device: not simulated", n.Vlan)
	}
	br, err := s.ensureBridge(n.BrName)
	if err != nil {
		return err
	}
	veth := s.hostVethName()
	s.plan.HostInterface = n.BrName
	if err := s.vethPair(veth, br.Index); err != nil {
		return err
	}
	res := &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{
			{Name: n.BrName},
			{Name: veth},
			{Name: s.opts.IfName, Sandbox: s.opts.Netns},
		},
	}
	s.result = res
	if !isL3 {
		return nil
	}
	ipamRes, err := s.ipam(n.IPAM.Type, conf)
	if err != nil {
		return err
	}
	res.IPs, res.Routes, res.DNS = ipamRes.IPs, ipamRes.Routes, ipamRes.DNS
	if len(res.IPs) == 0 {
		return fmt.Errorf("IPAM plugin returned missing IP config")
	}
	gws4, gws6, err := calcGateways(res, n.IsGW, n.IsDefaultGW)
	if err != nil {
		return err
	}
	if err := s.configureIface("bridge", res); err != nil {
		return err
	}
	if !n.IsGW {
		return nil
	}
	for _, gws := range [][]netip.Prefix{gws4, gws6} {
		for _, gw := range gws {
			if err := s.ensureAddr(n.BrName, gw, n.ForceAddress); err != nil {
				return err
			}
		}
		if len(gws) > 0 {
			if err := s.enableForward("bridge", gws[0].Addr().Is4()); err != nil {
				return err
			}
		}
	}
	return nil
}

// ensureBridge finds or creates the bridge, up with carrier (it has the
// pod's veth as an up port once the plugin is done).
func (s *sim) ensureBridge(name string) (fib.Link, error) {
	m := s.plan.Host
	if l, ok := m.Link(name); ok {
		if l.Kind != fib.KindBridge {
			return fib.Link{}, fmt.Errorf("%q already exists but is not a bridge", name)
		}
		if !l.Up {
			return fib.Link{}, fmt.Errorf("bridge %q exists but is down: bringing it up is not simulated", name)
		}
		if !l.Carrier {
			// What linkwatch does when an up bridge gains its first
			// forwarding port.
			if err := s.apply("bridge", NetnsHost, fmt.Sprintf("(bridge %s gains carrier from its first port)", name),
				fib.Carrier{Name: name, On: true}); err != nil {
				return fib.Link{}, err
			}
		}
		return l, nil
	}
	if err := s.apply("bridge", NetnsHost, fmt.Sprintf("link add %s type bridge; link set %s up", name, name),
		fib.AddLink{Link: fib.Link{Name: name, Kind: fib.KindBridge, Up: true, Carrier: true}}); err != nil {
		return fib.Link{}, err
	}
	l, _ := m.Link(name)
	return l, nil
}

// vethPair creates the pod's veth pair: the host end up (and enslaved to
// master if it is not 0), the pod end up in the pod namespace.
func (s *sim) vethPair(hostName string, master int) error {
	cmd := fmt.Sprintf("link add %s type veth peer %s netns pod; link set %s up", hostName, s.opts.IfName, hostName)
	plugin := "ptp"
	if master != 0 {
		m, _ := s.plan.Host.LinkByIndex(master)
		cmd += fmt.Sprintf("; link set %s master %s", hostName, m.Name)
		plugin = "bridge"
	}
	if err := s.apply(plugin, NetnsHost, cmd, fib.AddLink{Link: fib.Link{Name: hostName, Kind: fib.KindVeth, Up: true, Carrier: true, Master: master}}); err != nil {
		return err
	}
	return s.apply(plugin, NetnsPod, fmt.Sprintf("link set %s up", s.opts.IfName),
		fib.AddLink{Link: fib.Link{Name: s.opts.IfName, Kind: fib.KindVeth, Up: true, Carrier: true}})
}

// calcGateways reproduces the bridge plugin's calcGateways: every IP config
// is on the pod's interface (index 2); with isGateway a missing gateway is
// the subnet's first address; with isDefaultGateway a default route per
// family through that gateway is added unless the routes have one with a
// gateway. It returns the addresses to put on the bridge, per family.
func calcGateways(res *current.Result, isGW, isDefaultGW bool) (gws4, gws6 []netip.Prefix, err error) {
	found := map[bool]bool{}
	for _, ipc := range res.IPs {
		addr, ok := netipx.FromIP(ipc.Address.IP)
		if !ok {
			return nil, nil, fmt.Errorf("unknown IP object: %v", ipc)
		}
		v4 := addr.Is4()
		defaultNet := netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		if v4 {
			defaultNet = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		}
		ipc.Interface = current.Int(2)
		if ipc.Gateway == nil && isGW {
			ipc.Gateway = firstIP(ipc.Address)
		}
		if isDefaultGW && !found[v4] {
			for _, r := range res.Routes {
				if dst, err := prefixOf(r.Dst); err == nil && r.GW != nil && dst == defaultNet {
					found[v4] = true
					break
				}
			}
			if !found[v4] {
				res.Routes = append(res.Routes, &types.Route{Dst: ipNet(defaultNet), GW: ipc.Gateway})
				found[v4] = true
			}
		}
		if isGW {
			gw, ok := netipx.FromIP(ipc.Gateway)
			if !ok {
				return nil, nil, fmt.Errorf("gateway %v of %v is not an IP address", ipc.Gateway, ipc.Address)
			}
			ones, _ := ipc.Address.Mask.Size()
			if v4 {
				gws4 = append(gws4, netip.PrefixFrom(gw, ones))
			} else {
				gws6 = append(gws6, netip.PrefixFrom(gw, ones))
			}
		}
	}
	return gws4, gws6, nil
}

// ensureAddr reproduces the bridge plugin's ensureAddr: nothing to do if
// the bridge has the address with that prefix length; an error if it has
// another IPv4 address, or an IPv6 address overlapping the new one (with
// forceAddress the plugin would replace it, which is not simulated).
func (s *sim) ensureAddr(br string, gw netip.Prefix, force bool) error {
	for a := range s.plan.Host.Addrs() {
		if a.Link != br || a.Prefix.Addr().Is4() != gw.Addr().Is4() {
			continue
		}
		if a.Prefix == gw {
			return nil
		}
		if gw.Addr().Is4() || a.Prefix.Contains(gw.Addr()) || gw.Contains(a.Prefix.Addr()) {
			if force {
				return fmt.Errorf("forceAddress would replace %s on %q by %s: not simulated", a.Prefix, br, gw)
			}
			return fmt.Errorf("%q already has an IP address different from %v", br, gw)
		}
	}
	return s.apply("bridge", NetnsHost, fmt.Sprintf("addr add %s dev %s", gw, br), fib.AddAddress{Address: fib.Address{Prefix: gw, Link: br}})
}

// firstIP is the first address after the network address, the gateway the
// bridge plugin calculates when IPAM gave none.
func firstIP(n net.IPNet) net.IP {
	p, err := prefixOf(n)
	if err != nil {
		return nil
	}
	return net.IP(p.Masked().Addr().Next().AsSlice())
}

// ipNet converts a prefix to a net.IPNet.
func ipNet(p netip.Prefix) net.IPNet {
	return net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
