package checker

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/internal/netipx"
)

// Check runs every enabled check on the pod's network and returns the
// findings, errors first, then by code, then by pod IP.
//
// A nil in.Result gives no findings; a nil in.Host skips the host → pod
// checks (and so the model-vs-kernel comparison); a nil in.Pod skips the
// pod → gateway checks. The address checks need the result only. Check
// does not change the models.
func Check(in Input, opts Options) []Finding {
	if in.Result == nil {
		return nil
	}
	r := &run{in: in, opts: opts, net: readResult(in.Result)}
	r.addressChecks()
	r.cidrChecks()
	if in.Host != nil {
		r.hostChecks()
	}
	if in.Pod != nil {
		r.podChecks()
	}
	sortFindings(r.findings)
	return r.findings
}

// run holds one Check call: its input, its options and what it found.
type run struct {
	in       Input
	opts     Options
	net      podNet
	findings []Finding
}

// enabled reports whether a check runs.
func (r *run) enabled(c Code) bool {
	return !r.opts.Disabled[c]
}

// add records a finding of an enabled check, with the check's severity or
// its valid override.
func (r *run) add(c Code, addr netip.Addr, msg, fix string, trace []fib.Step) {
	if !r.enabled(c) {
		return
	}
	i, _ := info(c)
	sev := i.Severity
	if o, ok := r.opts.Severity[c]; ok && o.Valid() {
		sev = o
	}
	// A rule prints as `ip rule` does, with a tab after the priority: a
	// finding is read in an Event, a log line or a CNI error, so it holds
	// single spaces only.
	f := Finding{Code: c, Severity: sev, Message: untab(msg), Fix: untab(fix), Address: addr}
	for _, s := range trace {
		f.Trace = append(f.Trace, untab(s.String()))
	}
	r.findings = append(r.findings, f)
}

// sortFindings orders errors before warnings, then by code, then by
// address, then by message, so the first finding is the one a rejection
// should name.
func sortFindings(fs []Finding) {
	rank := func(s Severity) int {
		switch s {
		case SeverityError:
			return 0
		case SeverityWarning:
			return 1
		}
		return 2
	}
	slices.SortStableFunc(fs, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(rank(a.Severity), rank(b.Severity)),
			strings.Compare(string(a.Code), string(b.Code)),
			a.Address.Compare(b.Address),
			strings.Compare(a.Message, b.Message),
		)
	})
}

// podNet is what the checks need from the CNI result.
type podNet struct {
	// ips are the addresses of the pod's (sandbox) interfaces.
	ips []podIP
	// bad are the indexes of IP configs without a valid address.
	bad []int
	// sandbox names the interfaces inside the pod.
	sandbox []string
	// hostSide names the interfaces outside it (bridge, host veth).
	hostSide []string
	// defaults holds the families for which the result lists a default
	// route.
	defaults map[fib.Family]bool
	// routeGateways are the gateways of the result's routes.
	routeGateways []netip.Addr
}

// podIP is one IP config of a pod interface.
type podIP struct {
	// prefix is the address with the prefix length of its subnet.
	prefix netip.Prefix
	// gateway is the IP config's gateway, zero if none.
	gateway netip.Addr
	// iface is the pod interface the address is on, "" if the result does
	// not say.
	iface string
}

func (p podIP) addr() netip.Addr { return p.prefix.Addr() }

// readResult picks the pod's addresses and interfaces out of a CNI result:
// interfaces with a Sandbox are the pod's, the others the host's; IP
// configs that name a host-side interface are not pod addresses.
func readResult(res *current.Result) podNet {
	var n podNet
	for _, ifc := range res.Interfaces {
		switch {
		case ifc == nil:
		case ifc.Sandbox != "":
			n.sandbox = append(n.sandbox, ifc.Name)
		default:
			n.hostSide = append(n.hostSide, ifc.Name)
		}
	}
	for i, ipc := range res.IPs {
		if ipc == nil {
			n.bad = append(n.bad, i)
			continue
		}
		iface := ""
		if ipc.Interface != nil && *ipc.Interface >= 0 && *ipc.Interface < len(res.Interfaces) && res.Interfaces[*ipc.Interface] != nil {
			ifc := res.Interfaces[*ipc.Interface]
			if ifc.Sandbox == "" {
				continue
			}
			iface = ifc.Name
		}
		p, ok := netipx.FromIPNet(ipc.Address)
		if !ok {
			n.bad = append(n.bad, i)
			continue
		}
		n.ips = append(n.ips, podIP{prefix: p, gateway: addrOf(ipc.Gateway, p.Addr()), iface: iface})
	}
	n.defaults = make(map[fib.Family]bool)
	for _, rt := range res.Routes {
		if rt == nil {
			continue
		}
		dst, ok := netipx.FromIPNet(rt.Dst)
		if !ok {
			continue
		}
		if dst.Bits() == 0 {
			n.defaults[fib.FamilyOf(dst.Addr())] = true
		}
		if gw := addrOf(rt.GW, dst.Addr()); gw.IsValid() {
			n.routeGateways = append(n.routeGateways, gw)
		}
	}
	return n
}

// addrOf converts a CNI gateway. Go keeps IPv4 addresses in 16 bytes too,
// so an IPv4 gateway cannot be told from an IPv4-mapped one: it is taken
// as IPv4, and as IPv4-mapped only next to an IPv6 address (where it is of
// the wrong family either way).
func addrOf(ip net.IP, family netip.Addr) netip.Addr {
	if len(ip) == net.IPv6len && !family.Is4() {
		a, _ := netip.AddrFromSlice(ip) // as written: IPv4-mapped stays so
		return a
	}
	a, _ := netipx.FromIP(ip)
	return a
}

// loopbackName is the name of a model's loopback device.
func loopbackName(m *fib.Model) string {
	for l := range m.Links() {
		if l.Kind == fib.KindLoopback {
			return l.Name
		}
	}
	return "lo"
}

// routeText formats a matched route shortly, as the finding messages
// quote it: "local 127.0.0.0/8 dev lo, table local"; table is where the
// lookup found it, used if the route does not say.
func routeText(r *fib.Route, table fib.TableID) string {
	if r == nil {
		return ""
	}
	var b strings.Builder
	if r.Type != fib.TypeUnicast {
		b.WriteString(r.Type.String())
		b.WriteByte(' ')
	}
	switch {
	case r.Dst.Bits() == 0:
		b.WriteString("default")
	case r.Dst.IsSingleIP():
		b.WriteString(r.Dst.Addr().String())
	default:
		b.WriteString(r.Dst.String())
	}
	// A multipath route's next hops are named by the finding that judges
	// them (judgePaths); the first is not the route's.
	if len(r.NextHops) == 1 {
		nh := r.NextHops[0]
		if nh.Gateway.IsValid() {
			fmt.Fprintf(&b, " via %s", nh.Gateway)
		}
		if nh.Link != "" {
			fmt.Fprintf(&b, " dev %s", nh.Link)
		}
	}
	// The route's own table: while local and main are merged the lookup
	// searches main, but a local route still belongs to table local.
	if r.Table != fib.TableUnspec {
		table = r.Table
	}
	fmt.Fprintf(&b, ", table %s", table)
	return b.String()
}

// inParens returns " (s)", or "" for an empty s.
func inParens(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

// refusal explains a refused lookup as "EINVAL: blackhole route
// 10.244.0.0/24 in table main", from the trace's error step.
func refusal(res *fib.Result) string {
	for i := len(res.Trace) - 1; i >= 0; i-- {
		if s := res.Trace[i]; s.Kind == fib.StepError {
			return strings.TrimPrefix(s.String(), "error ")
		}
	}
	return res.ErrName()
}

// ruleText formats a rule on one line, as `ip rule` prints it.
func ruleText(r *fib.Rule) string { return untab(r.String()) }

// untab replaces tab characters with spaces.
func untab(s string) string { return strings.ReplaceAll(s, "\t", " ") }

// isDefaultRule reports whether r is one of the rules every namespace
// starts with (0 lookup local, 32766 lookup main, 32767 lookup default).
func isDefaultRule(r *fib.Rule) bool {
	if r.Action != fib.ActionLookup {
		return false
	}
	for _, d := range fib.DefaultRules(r.Family) {
		if r.Priority == d.Priority && r.Table == d.Table && !r.Not && !r.Src.IsValid() && !r.Dst.IsValid() &&
			r.IIF == "" && r.OIF == "" && r.Mask == 0 && r.TOS == 0 && !r.L3MDev && r.IPProto == 0 && allUIDs(r.UIDs) &&
			r.SPort == (fib.PortRange{}) && r.DPort == (fib.PortRange{}) && r.SuppressPrefixLen < 0 && r.SuppressIfGroup < 0 {
			return true
		}
	}
	return false
}

// allUIDs reports whether a rule's uid range selects every user (unset, or
// the full range).
func allUIDs(u *fib.UIDRange) bool {
	return u == nil || (u.Start == 0 && u.End == ^uint32(0))
}
