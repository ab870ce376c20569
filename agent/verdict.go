package agent

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/fibguard/fibguard/checker"
	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/fib/live"
)

// HostCodes are the checks the agent runs again: those whose outcome a
// change of the node can turn after ADD — the host's route to each pod IP
// (FG001–FG006), the cluster's ranges (FG030, FG031) and the model's
// agreement with the kernel (FG040, FG041). The checks of the CNI result
// alone (FG02x) cannot change, and the pod's own namespace (FG01x) is not
// watched.
var HostCodes = []checker.Code{
	checker.CodeHostLoopback, checker.CodeNodeAddress, checker.CodeShadowed,
	checker.CodeHostRefused, checker.CodePolicyRule, checker.CodeNotUnicast,
	checker.CodeServiceCIDR, checker.CodeClusterCIDR,
	checker.CodeModelKernel, checker.CodeKernelFailed,
}

// Verdict is one attachment's outcome in a round of checks.
type Verdict struct {
	Attachment *Attachment
	// Findings of HostCodes, with the attachment's own settings (checks
	// turned off, severities).
	Findings []checker.Finding
}

// Broken reports whether a finding has severity error: the pod's network
// no longer works from the node.
func (v Verdict) Broken() bool {
	return slices.ContainsFunc(v.Findings, func(f checker.Finding) bool { return f.Severity == checker.SeverityError })
}

// Codes are the codes of the error findings, sorted, each once.
func (v Verdict) Codes() []checker.Code {
	set := map[checker.Code]bool{}
	for _, f := range v.Findings {
		if f.Severity == checker.SeverityError {
			set[f.Code] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// CheckAll judges every attachment against one model of the host
// namespace ns, read for the pod IPs of all of them (LoadFor), and asks
// the kernel about each pod IP to compare (FG040).
func CheckAll(ns *live.Namespace, atts []*Attachment) ([]Verdict, error) {
	var dsts []netip.Addr
	for _, a := range atts {
		dsts = append(dsts, checker.HostDestinations(a.Config.Result)...)
	}
	m, err := ns.LoadFor(dsts)
	if err != nil {
		return nil, fmt.Errorf("reading the host's network: %w", err)
	}
	out := make([]Verdict, 0, len(atts))
	for _, a := range atts {
		out = append(out, Verdict{Attachment: a, Findings: checkOne(m, ns.RouteGet, a)})
	}
	return out, nil
}

// checkOne runs HostCodes on one attachment, with its settings.
func checkOne(m *fib.Model, kernel func(fib.Query) (fib.Result, error), a *Attachment) []checker.Finding {
	c := a.Config
	opts := checker.Options{Severity: c.Options.Severity, Disabled: map[checker.Code]bool{}}
	for _, info := range checker.Catalog() {
		if c.Options.Disabled[info.Code] || !slices.Contains(HostCodes, info.Code) {
			opts.Disabled[info.Code] = true
		}
	}
	return checker.Check(checker.Input{
		Host:         m,
		Result:       c.Result,
		Kernel:       kernel,
		ServiceCIDRs: c.ServiceCIDRs,
		ClusterCIDRs: c.ClusterCIDRs,
	}, opts)
}
