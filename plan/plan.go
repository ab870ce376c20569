// Package plan predicts what a CNI conflist would configure for a new pod,
// without running a plugin: it replays the addressing of the reference
// `bridge` and `ptp` plugins with `host-local` or `static` IPAM on a
// what-if copy of a node's fib model, and builds the pod's model and the
// CNI result that the plugin after them (fibguard) would receive.
//
// The simulation follows the source of github.com/containernetworking/plugins
// v1.10.0, and a differential test runs the same conflists through the real
// plugins to keep it honest. host-local's allocation is written again here
// (hostlocal.go, after that module's allocator and Range.Canonicalize), so
// that ranges, rangeStart, rangeEnd and the gateway are decided as on a
// node; the differential test compares them with the real plugin's.
//
// Known limits: the pod is the first one on the node (host-local starts
// from an empty store, so with the defaults it gets .2); only the plugins
// that create the pod's interface and assign its addresses are simulated,
// others (portmap, tuning, bandwidth, ...) are listed as skipped; IPv6
// link-local addresses, duplicate address detection, MAC addresses, bridge
// VLANs and forceAddress replacing an address are not modelled.
package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/internal/netconf"
	"github.com/fibguard/fibguard/internal/netipx"
)

// Defaults for the pod the simulation sets up.
const (
	DefaultContainerID = "fibguard-check"
	DefaultIfName      = "eth0"
	DefaultNetns       = "/var/run/netns/fibguard-check"
	DefaultHostVeth    = "vethfgcheck"
)

// ErrNoInterfacePlugin reports a conflist without a plugin whose
// addressing can be simulated (bridge or ptp).
var ErrNoInterfacePlugin = errors.New("no plugin that this simulation knows creates the pod's interface (bridge or ptp)")

// Options name the pod the simulation sets up; zero values take the
// defaults above.
type Options struct {
	// ContainerID is the container the IPAM reserves addresses for.
	ContainerID string
	// IfName is the pod's interface (CNI_IFNAME).
	IfName string
	// Netns is the pod's namespace path (CNI_NETNS), reported as the
	// sandbox of the pod's interface in the result.
	Netns string
	// HostVeth is the name of the host end of the pod's veth pair; the real
	// plugins pick a random one. A name the node already uses gets a
	// number appended.
	HostVeth string
}

func (o Options) withDefaults() Options {
	if o.ContainerID == "" {
		o.ContainerID = DefaultContainerID
	}
	if o.IfName == "" {
		o.IfName = DefaultIfName
	}
	if o.Netns == "" {
		o.Netns = DefaultNetns
	}
	if o.HostVeth == "" {
		o.HostVeth = DefaultHostVeth
	}
	return o
}

// Plan is what a conflist's plugins would configure for one new pod.
type Plan struct {
	// Network and CNIVersion are the conflist's.
	Network    string
	CNIVersion string
	// Host is the node's model with the plugins' changes applied.
	Host *fib.Model
	// Pod is the model of the pod's namespace after the plugins ran.
	Pod *fib.Model
	// Result is the CNI result the plugin after the simulated ones would
	// receive as prevResult, converted to the conflist's cniVersion and
	// back, as a chained plugin reads it.
	Result *current.Result
	// HostInterface is the pod's host-side interface: the bridge its veth
	// is attached to, or the host end of the veth for ptp.
	HostInterface string
	// Plugins lists every plugin of the conflist in order, saying which
	// were simulated.
	Plugins []Plugin
	// Actions are the changes the simulated plugins make, in order.
	Actions []Action
}

// Plugin is one entry of the conflist and what the simulation did with it.
type Plugin struct {
	Type      string `json:"type"`
	Simulated bool   `json:"simulated"`
	// Note says what was simulated, or why the plugin was skipped.
	Note string `json:"note,omitempty"`
}

// Action is one change a plugin makes, written as the iproute2 command that
// would make it.
type Action struct {
	Plugin string `json:"plugin"`
	// Netns is "host" or "pod".
	Netns   string `json:"netns"`
	Command string `json:"command"`
}

// Namespaces an action applies to.
const (
	NetnsHost = "host"
	NetnsPod  = "pod"
)

// Simulate replays the conflist's addressing plugins for one new pod on a
// copy of node; node itself is not changed. It fails with
// ErrNoInterfacePlugin when no plugin can be simulated, and with an error
// naming the plugin when the configuration is invalid or the real plugin
// would fail (for example a bridge that already has another address).
func Simulate(node *fib.Model, list *libcni.NetworkConfigList, opts Options) (*Plan, error) {
	if node == nil {
		return nil, errors.New("simulate: no node model")
	}
	if list == nil {
		return nil, errors.New("simulate: no conflist")
	}
	if list.CNIVersion == "" {
		return nil, fmt.Errorf("conflist %q: no cniVersion", list.Name)
	}
	opts = opts.withDefaults()
	s := &sim{
		opts: opts,
		plan: &Plan{Network: list.Name, CNIVersion: list.CNIVersion, Host: node.Clone(), Pod: podModel()},
	}
	for i, pc := range list.Plugins {
		// libcni gives every plugin the list's name and version.
		conf, err := libcni.InjectConf(pc, map[string]any{"name": list.Name, "cniVersion": list.CNIVersion})
		if err != nil {
			return nil, fmt.Errorf("plugin %d (%s): %w", i+1, pc.Network.Type, err)
		}
		if err := s.plugin(conf); err != nil {
			return nil, fmt.Errorf("plugin %d (%s): %w", i+1, pc.Network.Type, err)
		}
	}
	if s.result == nil {
		return nil, ErrNoInterfacePlugin
	}
	res, err := asPrevResult(s.result, list.CNIVersion)
	if err != nil {
		return nil, err
	}
	s.plan.Result = res
	return s.plan, nil
}

// sim is the state of one simulation.
type sim struct {
	opts Options
	plan *Plan
	// result is the result of the interface plugin, nil until one ran.
	result *current.Result
	// iface is the type of the plugin that created the pod's interface.
	iface string
}

// plugin simulates one entry of the conflist, or records why it is skipped.
func (s *sim) plugin(conf *libcni.PluginConfig) error {
	typ := conf.Network.Type
	switch typ {
	case "bridge", "ptp":
		if s.iface != "" {
			return fmt.Errorf("the pod's interface %s was already created by %s: a second interface plugin would fail", s.opts.IfName, s.iface)
		}
		s.iface = typ
		var err error
		if typ == "bridge" {
			err = s.bridge(conf.Bytes)
		} else {
			err = s.ptp(conf.Bytes)
		}
		if err != nil {
			return err
		}
		note := "interface and IPAM " + conf.Network.IPAM.Type
		if conf.Network.IPAM.Type == "" {
			note = "interface only (no ipam: layer 2)"
		}
		s.plan.Plugins = append(s.plan.Plugins, Plugin{Type: typ, Simulated: true, Note: note})
		return nil
	}
	s.plan.Plugins = append(s.plan.Plugins, Plugin{Type: typ, Note: skipNote(typ)})
	return nil
}

// skipNote says why a plugin type is not simulated.
func skipNote(typ string) string {
	switch typ {
	case netconf.Type:
		return "the check itself: its findings follow"
	case "portmap", "bandwidth", "firewall":
		return "skipped: changes neither addresses nor routes"
	case "loopback":
		return "skipped: the pod's lo is modelled up"
	}
	return "skipped: not simulated"
}

// podModel is a new pod namespace whose lo the runtime has brought up.
func podModel() *fib.Model {
	m := fib.NewModel()
	changes := []fib.Change{fib.LinkUp{Name: "lo"}}
	for _, p := range []string{"127.0.0.1/8", "::1/128"} {
		changes = append(changes, fib.AddAddress{Address: fib.Address{Prefix: netip.MustParsePrefix(p), Link: "lo"}})
	}
	if err := m.Apply(changes...); err != nil {
		// Constant input on a new model: only a bug in fib gets here.
		panic(fmt.Sprintf("plan: pod lo: %v", err))
	}
	return m
}

// apply makes one change in the host or pod model and records it.
func (s *sim) apply(plugin, netns, command string, c fib.Change) error {
	m := s.plan.Host
	if netns == NetnsPod {
		m = s.plan.Pod
	}
	if err := m.Apply(c); err != nil {
		return fmt.Errorf("%s: %s: %w", netns, command, err)
	}
	s.plan.Actions = append(s.plan.Actions, Action{Plugin: plugin, Netns: netns, Command: command})
	return nil
}

// record notes an action that changes nothing the model holds (a sysctl
// outside it, a route add the plugin lets fail).
func (s *sim) record(plugin, netns, command string) {
	s.plan.Actions = append(s.plan.Actions, Action{Plugin: plugin, Netns: netns, Command: command})
}

// hostVethName returns the configured host veth name, numbered if the node
// already has a device of that name.
func (s *sim) hostVethName() string {
	name := s.opts.HostVeth
	for n := 1; ; n++ {
		if _, ok := s.plan.Host.Link(name); !ok {
			return name
		}
		name = fmt.Sprintf("%s%d", s.opts.HostVeth, n)
	}
}

// enableForward is what writing net.ipv4.ip_forward=1 (forwarding on for
// every device and for "all") or net.ipv6.conf.all.forwarding=1 (the
// subnet-router anycast routes of the host's IPv6 addresses) does.
func (s *sim) enableForward(plugin string, v4 bool) error {
	if !v4 {
		return s.apply(plugin, NetnsHost, "sysctl net.ipv6.conf.all.forwarding=1", fib.SetForwarding{Family: fib.V6, On: true})
	}
	return s.apply(plugin, NetnsHost, "sysctl net.ipv4.ip_forward=1", fib.SetForwarding{Family: fib.V4, On: true})
}

// configureIface reproduces ipam.ConfigureIface of the plugins: every IP
// config on the pod's interface, the interface up, then every route of the
// result through it, a route without a gateway taking the first gateway of
// its family.
func (s *sim) configureIface(plugin string, res *current.Result) error {
	ifName := s.opts.IfName
	var v4gw, v6gw netip.Addr
	for _, ipc := range res.IPs {
		if ipc.Interface == nil {
			continue
		}
		if i := *ipc.Interface; i < 0 || i >= len(res.Interfaces) || res.Interfaces[i].Name != ifName {
			return fmt.Errorf("failed to add IP addr %v to %q: invalid interface index", ipc, ifName)
		}
		pfx, err := prefixOf(ipc.Address)
		if err != nil {
			return err
		}
		if err := s.apply(plugin, NetnsPod, fmt.Sprintf("addr add %s dev %s", pfx, ifName), fib.AddAddress{Address: fib.Address{Prefix: pfx, Link: ifName}}); err != nil {
			return err
		}
		gw, _ := netipx.FromIP(ipc.Gateway)
		if gw.Is4() && !v4gw.IsValid() {
			v4gw = gw
		} else if !gw.Is4() && !v6gw.IsValid() {
			v6gw = gw
		}
	}
	for _, r := range res.Routes {
		dst, err := prefixOf(r.Dst)
		if err != nil {
			return fmt.Errorf("route: %w", err)
		}
		gw, _ := netipx.FromIP(r.GW)
		if !gw.IsValid() {
			gw = v6gw
			if dst.Addr().Is4() {
				gw = v4gw
			}
		}
		route := fib.Route{
			Family:   fib.FamilyOf(dst.Addr()),
			Table:    fib.TableMain,
			Type:     fib.TypeUnicast,
			Dst:      dst.Masked(),
			Metric:   uint32(max(r.Priority, 0)),
			Protocol: "boot",
			NextHops: []fib.NextHop{{Link: ifName, Gateway: gw}},
		}
		if r.Table != nil {
			route.Table = fib.TableID(uint32(max(*r.Table, 0)))
		}
		if r.Scope != nil {
			route.Scope = fib.Scope(uint8(min(max(*r.Scope, 0), 255)))
		}
		if err := s.addRoute(plugin, NetnsPod, route); err != nil {
			return err
		}
	}
	return nil
}

// addRoute adds a route and records it as `ip route add`.
func (s *sim) addRoute(plugin, netns string, r fib.Route) error {
	if r.Family == fib.V6 && r.Metric == 0 {
		// As the kernel does for an IPv6 route without a metric.
		r.Metric = 1024
	}
	return s.apply(plugin, netns, "route add "+r.String(), fib.AddRoute{Route: r})
}

// asPrevResult converts a result the way it travels to the next plugin:
// to the conflist's version as JSON, then read back as the current version,
// as a chained plugin does with its prevResult.
func asPrevResult(res *current.Result, cniVersion string) (*current.Result, error) {
	conv, err := res.GetAsVersion(cniVersion)
	if err != nil {
		return nil, fmt.Errorf("result as cniVersion %s: %w", cniVersion, err)
	}
	b, err := json.Marshal(conv)
	if err != nil {
		return nil, fmt.Errorf("result as cniVersion %s: %w", cniVersion, err)
	}
	back, err := version.NewResult(cniVersion, b)
	if err != nil {
		return nil, fmt.Errorf("result as cniVersion %s: %w", cniVersion, err)
	}
	out, err := current.NewResultFromResult(back)
	if err != nil {
		return nil, fmt.Errorf("result as cniVersion %s: %w", cniVersion, err)
	}
	return out, nil
}

// prefixOf converts an address with its mask, keeping the host bits.
func prefixOf(n net.IPNet) (netip.Prefix, error) {
	a, ok := netipx.FromIP(n.IP)
	if !ok {
		return netip.Prefix{}, fmt.Errorf("invalid address %v", n.IP)
	}
	ones, bits := n.Mask.Size()
	if bits != a.BitLen() {
		return netip.Prefix{}, fmt.Errorf("address %s: mask of %d bits", a, bits)
	}
	return netip.PrefixFrom(a, ones), nil
}
