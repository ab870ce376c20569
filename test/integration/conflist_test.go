package integration

import (
	"encoding/json"
	"net/netip"
)

// netName is the network name of every test conflist. host-local keeps its
// reservations under dataDir/netName, and libcni its cache under it.
const netName = "fgnet"

// network describes one pod network the way a runtime finds it in
// /etc/cni/net.d: a main plugin (bridge or ptp) with host-local IPAM,
// optionally followed by fibguard. conflist renders it; the tests only say
// what differs between cases.
type network struct {
	// version is the conflist's cniVersion; empty means 1.0.0.
	version string
	// ptp selects the ptp plugin (kindnet-style) instead of bridge.
	ptp bool
	// ranges are host-local's range sets, one per address family: two make
	// a dual-stack pod.
	ranges []ipRange
	// fibguard, when not nil, chains fibguard after the main plugin with
	// these settings added to its entry (e.g. "mode": "warn").
	fibguard map[string]any
	// tuning chains the reference tuning plugin, with nothing to tune,
	// after the main plugin (after fibguard, if both): the cost of one
	// more chained plugin, the benchmark's baseline.
	tuning bool
	// entries are chained last, exactly as given (no settings added).
	entries []map[string]any
}

// ipRange is one host-local range: a subnet, optionally narrowed to
// start..end so that a test can pick the exact pod IP.
type ipRange struct {
	subnet     netip.Prefix
	start, end netip.Addr
}

// subnet returns the range of a whole subnet.
func subnet(s string) ipRange {
	return ipRange{subnet: netip.MustParsePrefix(s)}
}

// only narrows the range to one address, which host-local then hands out.
func (r ipRange) only(s string) ipRange {
	a := netip.MustParseAddr(s)
	r.start, r.end = a, a
	return r
}

// bridgeNet is a bridge network with host-local ranges on the given
// subnets, as in the CNI documentation and most single-node setups.
func bridgeNet(subnets ...string) network {
	n := network{}
	for _, s := range subnets {
		n.ranges = append(n.ranges, subnet(s))
	}
	return n
}

// ptpNet is a ptp network (kindnet's layout) on the given subnets.
func ptpNet(subnets ...string) network {
	n := bridgeNet(subnets...)
	n.ptp = true
	return n
}

// withFibguard returns n with fibguard chained after the main plugin;
// settings are added to fibguard's entry.
func (n network) withFibguard(settings map[string]any) network {
	if settings == nil {
		settings = map[string]any{}
	}
	n.fibguard = settings
	return n
}

// withoutFibguard returns n with fibguard removed: the same chain, as it
// runs today on nodes without fibguard.
func (n network) withoutFibguard() network {
	n.fibguard = nil
	return n
}

// withTuning returns n with the reference tuning plugin chained after the
// main plugin.
func (n network) withTuning() network {
	n.tuning = true
	return n
}

// withEntry returns n with entry chained last, exactly as given: a plugin
// with its defaults, as a user appends {"type": "fibguard"}.
func (n network) withEntry(entry map[string]any) network {
	n.entries = append(append([]map[string]any(nil), n.entries...), entry)
	return n
}

// withVersion returns n with another cniVersion.
func (n network) withVersion(v string) network {
	n.version = v
	return n
}

// cniVersion returns the conflist's cniVersion.
func (n network) cniVersion() string {
	if n.version == "" {
		return "1.0.0"
	}
	return n.version
}

// conflist renders n as conflist JSON. bridge names the bridge device,
// dataDir is host-local's state directory and logFile fibguard's log.
func (n network) conflist(bridge, dataDir, logFile string) ([]byte, error) {
	ipam := map[string]any{
		"type":    "host-local",
		"dataDir": dataDir,
		"ranges":  n.rangeSets(),
		"routes":  n.defaultRoutes(),
	}
	main := map[string]any{"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": false, "ipam": ipam}
	if n.ptp {
		main = map[string]any{"type": "ptp", "ipMasq": false, "mtu": 1500, "ipam": ipam}
	}
	plugins := []map[string]any{main}
	if n.fibguard != nil {
		fg := map[string]any{"type": "fibguard", "logFile": logFile, "logLevel": "debug"}
		for k, v := range n.fibguard {
			fg[k] = v
		}
		plugins = append(plugins, fg)
	}
	if n.tuning {
		plugins = append(plugins, map[string]any{"type": "tuning"})
	}
	plugins = append(plugins, n.entries...)
	return json.Marshal(map[string]any{
		"cniVersion": n.cniVersion(),
		"name":       netName,
		"plugins":    plugins,
	})
}

func (n network) rangeSets() [][]map[string]any {
	var sets [][]map[string]any
	for _, r := range n.ranges {
		m := map[string]any{"subnet": r.subnet.String()}
		if r.start.IsValid() {
			m["rangeStart"], m["rangeEnd"] = r.start.String(), r.end.String()
		}
		sets = append(sets, []map[string]any{m})
	}
	return sets
}

// defaultRoutes gives the pod a default route for each of its families,
// through the gateway host-local picks (the subnet's first address).
func (n network) defaultRoutes() []map[string]any {
	var routes []map[string]any
	for _, r := range n.ranges {
		dst := "0.0.0.0/0"
		if r.subnet.Addr().Is6() {
			dst = "::/0"
		}
		routes = append(routes, map[string]any{"dst": dst})
	}
	return routes
}
