package check

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/containernetworking/cni/libcni"

	"github.com/fibguard/fibguard/checker"
	"github.com/fibguard/fibguard/plan"
)

// pluginType is fibguard's type in a conflist.
const pluginType = "fibguard"

// guard is fibguard's entry in the conflist, as far as it changes what the
// checks report: which checks run and how bad they are, the cluster's
// ranges, and the mode.
type guard struct {
	// index is the entry's position in the conflist, -1 if it has none.
	index        int
	mode         string
	options      checker.Options
	serviceCIDRs []netip.Prefix
	clusterCIDRs []netip.Prefix
}

// guardConf holds the fields of fibguard's configuration that decide the
// findings, with the plugin's names and values (docs/plugin.md); the other
// fields (logging, failurePolicy, Kubernetes) change nothing here.
type guardConf struct {
	Mode         string            `json:"mode"`
	Checks       map[string]string `json:"checks"`
	ServiceCIDRs []string          `json:"serviceCIDRs"`
	ClusterCIDRs []string          `json:"clusterCIDRs"`
}

// findGuard reads the last fibguard entry of the conflist; without one the
// checks run with their defaults, as if fibguard were appended.
func findGuard(list *libcni.NetworkConfigList) (guard, error) {
	g := guard{index: -1, mode: "enforce"}
	for i, p := range list.Plugins {
		if p.Network.Type == pluginType {
			g.index = i
		}
	}
	if g.index < 0 {
		return g, nil
	}
	var c guardConf
	if err := json.Unmarshal(list.Plugins[g.index].Bytes, &c); err != nil {
		return g, fmt.Errorf("fibguard entry: %w", err)
	}
	var problems []string
	switch c.Mode {
	case "":
	case "enforce", "warn":
		g.mode = c.Mode
	default:
		problems = append(problems, fmt.Sprintf("mode: %q is not one of \"enforce\", \"warn\"", c.Mode))
	}
	for _, code := range slices.Sorted(maps.Keys(c.Checks)) {
		v := c.Checks[code]
		if !checker.Known(checker.Code(code)) {
			problems = append(problems, fmt.Sprintf("checks: unknown check code %q", code))
			continue
		}
		switch v {
		case "off":
			if g.options.Disabled == nil {
				g.options.Disabled = map[checker.Code]bool{}
			}
			g.options.Disabled[checker.Code(code)] = true
		case string(checker.SeverityError), string(checker.SeverityWarning):
			if g.options.Severity == nil {
				g.options.Severity = map[checker.Code]checker.Severity{}
			}
			g.options.Severity[checker.Code(code)] = checker.Severity(v)
		default:
			problems = append(problems, fmt.Sprintf("checks: %s: %q is not one of \"error\", \"warning\", \"off\"", code, v))
		}
	}
	var err error
	if g.serviceCIDRs, err = prefixes("serviceCIDRs", c.ServiceCIDRs); err != nil {
		problems = append(problems, err.Error())
	}
	if g.clusterCIDRs, err = prefixes("clusterCIDRs", c.ClusterCIDRs); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return g, errors.New("fibguard entry: invalid configuration: " + strings.Join(problems, "; "))
	}
	return g, nil
}

// prefixes parses a list of CIDRs, masking host bits as the plugin does.
func prefixes(key string, list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %q is not a CIDR prefix", key, i, s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
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
