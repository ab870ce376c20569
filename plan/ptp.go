package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/internal/netipx"
)

// ptp simulates the ptp plugin's cmdAdd. In the pod: each address with its
// prefix length, but the kernel's subnet route is deleted and replaced by
// "GATEWAY/32 dev eth0 scope link src IP" and "SUBNET via GATEWAY src IP",
// so all traffic goes through the gateway; the IPAM routes are added as by
// any plugin. On the host: the gateway as a /32 (/128) on the host end of
// the veth, and a scope host route "IP/32 dev VETH" to the pod.
func (s *sim) ptp(conf []byte) error {
	var n types.NetConf
	if err := json.Unmarshal(conf, &n); err != nil {
		return fmt.Errorf("failed to load netconf: %w", err)
	}
	res, err := s.ipam(n.IPAM.Type, conf)
	if err != nil {
		return err
	}
	if len(res.IPs) == 0 {
		return fmt.Errorf("IPAM plugin returned missing IP config")
	}
	type ipcfg struct {
		addr netip.Prefix
		gw   netip.Addr
	}
	var cfgs []ipcfg
	fams := map[bool]bool{}
	for _, ipc := range res.IPs {
		p, err := prefixOf(ipc.Address)
		if err != nil {
			return err
		}
		gw, ok := netipx.FromIP(ipc.Gateway)
		if !ok || gw.Is4() != p.Addr().Is4() {
			return fmt.Errorf("address %s has no gateway of its family: ptp cannot route it", p)
		}
		cfgs = append(cfgs, ipcfg{p, gw})
		fams[p.Addr().Is4()] = true
	}
	for _, v4 := range []bool{true, false} {
		if fams[v4] {
			if err := s.enableForward("ptp", v4); err != nil {
				return err
			}
		}
	}
	veth := s.hostVethName()
	s.plan.HostInterface = veth
	if err := s.vethPair(veth, 0); err != nil {
		return err
	}
	for _, ipc := range res.IPs {
		ipc.Interface = current.Int(1)
	}
	res.Interfaces = []*current.Interface{{Name: veth}, {Name: s.opts.IfName, Sandbox: s.opts.Netns}}
	s.result = res
	if err := s.configureIface("ptp", res); err != nil {
		return err
	}
	ifName := s.opts.IfName
	for _, c := range cfgs {
		if err := s.delPrefixRoute(c.addr.Masked()); err != nil {
			return err
		}
		gwRoute := fib.Route{Dst: netip.PrefixFrom(c.gw, c.gw.BitLen()), Scope: fib.ScopeLink, PrefSrc: c.addr.Addr(), NextHops: []fib.NextHop{{Link: ifName}}}
		netRoute := fib.Route{Dst: c.addr.Masked(), PrefSrc: c.addr.Addr(), NextHops: []fib.NextHop{{Link: ifName, Gateway: c.gw}}}
		for _, r := range []fib.Route{gwRoute, netRoute} {
			if err := s.addRoute("ptp", NetnsPod, boot(r)); err != nil {
				return err
			}
		}
	}
	for _, c := range cfgs {
		gw := netip.PrefixFrom(c.gw, c.gw.BitLen())
		if err := s.apply("ptp", NetnsHost, fmt.Sprintf("addr add %s dev %s", gw, veth), fib.AddAddress{Address: fib.Address{Prefix: gw, Link: veth}}); err != nil {
			return err
		}
		host := boot(fib.Route{Dst: netip.PrefixFrom(c.addr.Addr(), c.addr.Addr().BitLen()), Scope: fib.ScopeHost, NextHops: []fib.NextHop{{Link: veth}}})
		if s.hasRoute(s.plan.Host, host) {
			// The plugin ignores EEXIST: the node's own route stays.
			s.record("ptp", NetnsHost, "route add "+host.String()+" (exists: kept the node's route)")
			continue
		}
		if err := s.addRoute("ptp", NetnsHost, host); err != nil {
			return err
		}
	}
	return nil
}

// boot completes a route as netlink.RouteAdd sends it: table main, unicast,
// protocol boot; IPv6 routes have no scope.
func boot(r fib.Route) fib.Route {
	r.Family = fib.FamilyOf(r.Dst.Addr())
	r.Table, r.Type, r.Protocol = fib.TableMain, fib.TypeUnicast, "boot"
	if r.Family == fib.V6 {
		r.Scope = fib.ScopeUniverse
	}
	return r
}

// hasRoute reports whether adding r would fail with EEXIST: an IPv4 route
// of the same table, destination, TOS and metric exists.
func (s *sim) hasRoute(m *fib.Model, r fib.Route) bool {
	if r.Family != fib.V4 {
		return false
	}
	for o := range m.Routes() {
		if o.Family == r.Family && o.Table == r.Table && o.Dst == r.Dst && o.TOS == r.TOS && o.Metric == r.Metric {
			return true
		}
	}
	return false
}

// delPrefixRoute deletes the subnet route the kernel added for an address
// of the pod's interface, as the ptp plugin does; like the kernel it fails
// when there is none (a /32 or /128 address).
func (s *sim) delPrefixRoute(dst netip.Prefix) error {
	del := fib.DelRoute{Route: fib.Route{Table: fib.TableMain, Dst: dst, NextHops: []fib.NextHop{{Link: s.opts.IfName}}}}
	err := s.apply("ptp", NetnsPod, fmt.Sprintf("route del %s dev %s", dst, s.opts.IfName), del)
	if errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("failed to delete route %s dev %s: no such route", dst, s.opts.IfName)
	}
	return err
}
