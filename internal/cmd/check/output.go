package check

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/fibguard/fibguard/checker"
	"github.com/fibguard/fibguard/internal/cmd/cli"
	"github.com/fibguard/fibguard/internal/netconf"
	"github.com/fibguard/fibguard/plan"
)

// verdict says in one line what fibguard's ADD would do.
func (r *report) verdict() string {
	errs, warns := r.errors(), len(r.findings)-r.errors()
	switch {
	case errs > 0 && r.warn():
		return fmt.Sprintf("mode warn: fibguard would let this pod through, with a Warning Event (PodNetworkWarning) on the pod for %s at error level", plural(errs, "finding"))
	case errs > 0:
		return fmt.Sprintf("fibguard would refuse this pod: %s at error level", plural(errs, "finding"))
	case warns > 0:
		return fmt.Sprintf("fibguard would accept this pod, with %s", plural(warns, "warning"))
	}
	return "fibguard would accept this pod: no findings"
}

// writeText prints the report for people: the conflist and node, what each
// plugin would do, the pod's addressing, one block per finding (its code,
// severity and message, the trace indented, the fix) and the verdict.
func writeText(w io.Writer, r *report) error {
	var b strings.Builder
	p := r.plan
	fmt.Fprintf(&b, "conflist %s: network %q, cniVersion %s\n", r.path, p.Network, p.CNIVersion)
	fmt.Fprintf(&b, "node: %s\n", r.node)
	b.WriteString("plugins:\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for i, pl := range p.Plugins {
		note := pl.Note
		if pl.Simulated {
			note = "simulated: " + note
		}
		if pl.Type == netconf.Type && i == r.guard.index {
			note += " (mode " + string(r.guard.mode) + ")"
		}
		// The tabwriter writes into a strings.Builder: Flush reports errors.
		_, _ = fmt.Fprintf(tw, "  %d\t%s\t%s\n", i+1, pl.Type, note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.guard.index < 0 {
		b.WriteString("  (no fibguard entry: the findings are those it would report if chained last)\n")
	}
	b.WriteString("what the plugins would do:\n")
	tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, a := range p.Actions {
		_, _ = fmt.Fprintf(tw, "  %s\t%s\t%s\n", a.Netns, a.Plugin, a.Command)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(&b, "pod: %s; host side: %s\n", podSummary(p), p.HostInterface)
	for _, f := range r.findings {
		fmt.Fprintf(&b, "\n%s %s: %s\n", f.Code, f.Severity, f.Message)
		for _, t := range f.Trace {
			b.WriteString("    " + t + "\n")
		}
		if f.Fix != "" {
			b.WriteString("  fix: " + f.Fix + "\n")
		}
	}
	b.WriteString("\n" + r.verdict() + "\n")
	_, err := io.WriteString(w, cli.Untab(b.String()))
	return err
}

// podSummary is "eth0 10.244.0.2/24 gateway 10.244.0.1".
func podSummary(p *plan.Plan) string {
	var parts []string
	for _, ip := range podIPs(p) {
		s := ip.Interface + " " + ip.Address
		if ip.Gateway != "" {
			s += " gateway " + ip.Gateway
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "no IP addresses (layer 2 only)"
	}
	return strings.Join(parts, ", ")
}

// ipJSON is one pod address in the JSON output.
type ipJSON struct {
	Interface string `json:"interface"`
	Address   string `json:"address"`
	Gateway   string `json:"gateway,omitempty"`
}

// podIPs lists the result's addresses with the interface each is on.
func podIPs(p *plan.Plan) []ipJSON {
	var out []ipJSON
	for _, ipc := range p.Result.IPs {
		ip := ipJSON{Address: ipc.Address.String()}
		if ipc.Interface != nil && *ipc.Interface >= 0 && *ipc.Interface < len(p.Result.Interfaces) {
			ip.Interface = p.Result.Interfaces[*ipc.Interface].Name
		}
		if ipc.Gateway != nil {
			ip.Gateway = ipc.Gateway.String()
		}
		out = append(out, ip)
	}
	return out
}

// jsonReport is the JSON output.
type jsonReport struct {
	Conflist  string            `json:"conflist"`
	Node      string            `json:"node"`
	Mode      string            `json:"mode"`
	Verdict   string            `json:"verdict"`
	Errors    int               `json:"errors"`
	Warnings  int               `json:"warnings"`
	Findings  []checker.Finding `json:"findings"`
	Simulated simulatedJSON     `json:"simulated"`
}

// simulatedJSON summarises the simulated addressing.
type simulatedJSON struct {
	Network       string        `json:"network"`
	CNIVersion    string        `json:"cniVersion"`
	Plugins       []plan.Plugin `json:"plugins"`
	HostInterface string        `json:"hostInterface"`
	IPs           []ipJSON      `json:"ips"`
	Routes        []string      `json:"routes"`
	Actions       []plan.Action `json:"actions"`
	// Result is the CNI result fibguard would receive as prevResult, in
	// the conflist's cniVersion.
	Result json.RawMessage `json:"result"`
}

// document is the report for programs (-o json, -o yaml): the findings,
// and what was simulated.
func (r *report) document() (any, error) {
	p := r.plan
	prev, err := p.Result.GetAsVersion(p.CNIVersion)
	if err != nil {
		return nil, fmt.Errorf("result: %w", err)
	}
	res, err := json.Marshal(prev)
	if err != nil {
		return nil, fmt.Errorf("result: %w", err)
	}
	out := jsonReport{
		Conflist: r.path,
		Node:     r.node,
		Mode:     string(r.guard.mode),
		Verdict:  r.verdict(),
		Errors:   r.errors(),
		Warnings: len(r.findings) - r.errors(),
		Findings: r.findings,
		Simulated: simulatedJSON{
			Network:       p.Network,
			CNIVersion:    p.CNIVersion,
			Plugins:       p.Plugins,
			HostInterface: p.HostInterface,
			IPs:           podIPs(p),
			Routes:        []string{},
			Actions:       p.Actions,
			Result:        res,
		},
	}
	if out.Findings == nil {
		out.Findings = []checker.Finding{}
	}
	if out.Simulated.IPs == nil {
		out.Simulated.IPs = []ipJSON{}
	}
	for _, rt := range p.Result.Routes {
		s := rt.Dst.String()
		if rt.GW != nil {
			s += " via " + rt.GW.String()
		}
		out.Simulated.Routes = append(out.Simulated.Routes, s)
	}
	return out, nil
}
