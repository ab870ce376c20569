package check

import (
	"fmt"
	"net/netip"

	"github.com/containernetworking/cni/libcni"

	"github.com/fibguard/fibguard/checker"
	"github.com/fibguard/fibguard/internal/netconf"
	"github.com/fibguard/fibguard/plan"
)

// guard is fibguard's entry in the conflist, as far as it changes what the
// checks report: which checks run and how bad they are, the cluster's
// ranges, and the mode.
type guard struct {
	// index is the entry's position in the conflist, -1 if it has none.
	index        int
	mode         netconf.Mode
	options      checker.Options
	serviceCIDRs []netip.Prefix
	clusterCIDRs []netip.Prefix
}

// findGuard reads the last fibguard entry of the conflist as the plugin
// reads it when the runtime hands it that entry: netconf.Parse, on
// the entry with the conflist's name and cniVersion inserted as libcni
// inserts them. So `check` predicts with the plugin's own reading of every
// key (a "Mode" the plugin ignores is ignored here too), and an entry the
// plugin refuses — every ADD would fail with it — is an error, not a
// prediction. Without an entry the checks run with their defaults, as if
// fibguard were appended.
func findGuard(list *libcni.NetworkConfigList) (guard, error) {
	g := guard{index: -1, mode: netconf.ModeEnforce}
	for i, p := range list.Plugins {
		if p.Network.Type == netconf.Type {
			g.index = i
		}
	}
	if g.index < 0 {
		return g, nil
	}
	stdin, err := libcni.InjectConf(list.Plugins[g.index], map[string]any{"name": list.Name, "cniVersion": list.CNIVersion})
	if err != nil {
		return g, fmt.Errorf("fibguard entry: %w", err)
	}
	conf, err := netconf.Parse(stdin.Bytes)
	if err != nil {
		return g, fmt.Errorf("fibguard entry, as the plugin reads it: %w", err)
	}
	g.mode, g.options = conf.Mode, conf.Options
	g.serviceCIDRs, g.clusterCIDRs = conf.ServiceCIDRs, conf.ClusterCIDRs
	return g, nil
}

// order refuses a conflist where fibguard comes before the plugin that
// sets up the pod's interface: it would get no prevResult and fail ADD
// with a configuration error instead of checking anything.
func (g guard) order(p *plan.Plan) error {
	if g.index < 0 {
		return nil
	}
	for i, pl := range p.Plugins {
		if pl.Simulated && i > g.index {
			return fmt.Errorf("fibguard is plugin %d, before %s (plugin %d): it must come after the plugins that set up the pod's network, or ADD fails for want of a prevResult", g.index+1, pl.Type, i+1)
		}
	}
	return nil
}
