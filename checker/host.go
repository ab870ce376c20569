package checker

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"

	"github.com/fibguard/fibguard/fib"
)

// want is where a lookup should lead: the devices that are right, and how
// to name them in a message ("bridge cni0"). No devices means the result
// does not say (macvlan, ipvlan, SR-IOV have no host side): only local
// delivery and refusals are findings then.
type want struct {
	devs []string
	desc string
}

func (w want) known() bool { return len(w.devs) > 0 }

// notText is ", not bridge cni0", or "" when the host side is unknown.
func (w want) notText() string {
	if !w.known() {
		return ""
	}
	return ", not " + w.desc
}

// hostWant finds the pod's host-side interface: a bridge among the
// result's host-side interfaces, or the bridge a host-side veth is
// enslaved to; otherwise (ptp style) the host-side interfaces themselves.
func (r *run) hostWant() want {
	m := r.in.Host
	var bridges []string
	for _, name := range r.net.hostSide {
		l, ok := m.Link(name)
		if !ok {
			continue
		}
		if l.Kind == fib.KindBridge {
			bridges = appendNew(bridges, name)
			continue
		}
		if ml, ok := m.LinkByIndex(l.Master); l.Master != 0 && ok && ml.Kind == fib.KindBridge {
			bridges = appendNew(bridges, ml.Name)
		}
	}
	devs := bridges
	if len(devs) == 0 {
		for _, name := range r.net.hostSide {
			devs = appendNew(devs, name)
		}
	}
	return describe(m, devs)
}

// describe names devices for messages: "bridge cni0", "veth1a2b3c4d".
func describe(m *fib.Model, devs []string) want {
	names := make([]string, len(devs))
	for i, d := range devs {
		names[i] = d
		if l, ok := m.Link(d); ok && l.Kind == fib.KindBridge {
			names[i] = "bridge " + d
		}
	}
	return want{devs: devs, desc: strings.Join(names, " or ")}
}

func appendNew(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// hostChecks look each pod IP up in the host's model, as a packet the host
// sends, and judge where it goes; with a kernel to ask, they compare the
// model's answer with the kernel's.
func (r *run) hostChecks() {
	w := r.hostWant()
	seen := make(map[netip.Addr]bool)
	for _, ip := range r.net.ips {
		a := ip.addr()
		// A link-local address is reachable only with its device named, and
		// no host interface carries IPv4-mapped addresses: the address
		// checks report both, a lookup would only add noise.
		if seen[a] || a.IsLinkLocalUnicast() || a.Is4In6() {
			continue
		}
		seen[a] = true
		q := fib.Query{Dst: a}
		res, err := r.in.Host.Lookup(q)
		if err != nil {
			// Only an invalid destination makes Lookup fail, and a is valid.
			continue
		}
		r.judgePaths(&res, func(res *fib.Result) { r.judgeHost(ip, w, res) })
		r.compareKernel(q, &res)
	}
}

// judgeHost turns the host's answer for a pod IP into at most one finding.
func (r *run) judgeHost(ip podIP, w want, res *fib.Result) {
	a := ip.addr()
	lo := loopbackName(r.in.Host)
	route := routeText(res.Route, res.Table)
	switch {
	case res.Err == syscall.EINVAL && !rejects(res):
		src := loopbackSource(res)
		r.add(CodeHostLoopback, a,
			fmt.Sprintf("pod IP %s is unreachable from the host: the kernel refuses it (EINVAL: loopback source %s on %s, route_localnet=0)", a, src, res.Dev),
			r.loopbackFix(a, append(slices.Clone(w.devs), res.Dev)), res.Trace)
	case res.Err != 0:
		r.add(CodeHostRefused, a,
			fmt.Sprintf("pod IP %s is unreachable from the host: the kernel refuses it (%s)", a, refusal(res)),
			refusedFix(res, ip, w), res.Trace)
	case res.Type == fib.TypeLocal || res.Dev == lo:
		if owner, p, ok := nodeAddress(r.in.Host, a, lo, res); ok {
			r.add(CodeNodeAddress, a,
				fmt.Sprintf("pod IP %s is an address of the node (on %s): the host delivers it to %s%s%s", a, owner, res.Dev, w.notText(), inParens(route)),
				nodeAddressFix(a, owner, p, w), res.Trace)
			return
		}
		r.add(CodeHostLoopback, a,
			fmt.Sprintf("pod IP %s would be delivered to %s%s%s", a, res.Dev, w.notText(), inParens(route)),
			r.localFix(a, res, w), res.Trace)
	case res.Type != fib.TypeUnicast:
		to := ""
		if w.known() {
			to = " to " + w.desc
		}
		r.add(CodeNotUnicast, a,
			fmt.Sprintf("pod IP %s would be sent as %s on %s, not unicast%s%s", a, res.Type, res.Dev, to, inParens(route)),
			fmt.Sprintf("give the pod a unicast address: keep the network and broadcast addresses of %s, and multicast ranges, out of the IPAM range", ip.prefix.Masked()),
			res.Trace)
	case w.known() && !slices.Contains(w.devs, res.Dev):
		if res.Rule != nil && !isDefaultRule(res.Rule) && res.Table != fib.TableMain && res.Table != fib.TableLocal {
			r.add(CodePolicyRule, a,
				fmt.Sprintf("pod IP %s would leave through %s%s: rule %q sends it to table %s%s", a, res.Dev, w.notText(), ruleText(res.Rule), res.Table, inParens(route)),
				r.policyFix(ip, w, res), res.Trace)
			return
		}
		r.add(CodeShadowed, a, shadowedMessage(a, w, res), shadowedFix(ip, w, res), res.Trace)
	}
}

// rejects reports whether a refused lookup was refused by a route or rule
// of a reject type (blackhole, unreachable, prohibit) rather than by the
// device decision after a route was found.
func rejects(res *fib.Result) bool {
	if res.Route != nil {
		switch res.Route.Type {
		case fib.TypeBlackhole, fib.TypeUnreachable, fib.TypeProhibit, fib.TypeThrow:
			return true
		}
	}
	if res.Rule != nil {
		switch res.Rule.Action {
		case fib.ActionBlackhole, fib.ActionUnreachable, fib.ActionProhibit:
			return true
		}
	}
	return res.Route == nil
}

// loopbackSource is the loopback source address the kernel refused: the
// matched route's preferred source, or the one the trace chose.
func loopbackSource(res *fib.Result) string {
	if res.Route != nil && res.Route.PrefSrc.IsValid() {
		return res.Route.PrefSrc.String()
	}
	for _, s := range res.Trace {
		if s.Kind == fib.StepSource && s.Addr.IsValid() {
			return s.Addr.String()
		}
	}
	return "address"
}

// loopbackFix says how to get a pod network out of 127.0.0.0/8, naming the
// loopback addresses on the devices involved that must go.
func (r *run) loopbackFix(a netip.Addr, devs []string) string {
	fix := "move the pod network out of 127.0.0.0/8 (for example to 10.244.0.0/16 in the IPAM config)"
	var dels []string
	for ad := range r.in.Host.Addrs() {
		if slices.Contains(devs, ad.Link) && ad.Link != loopbackName(r.in.Host) && loopbackNet4.Contains(ad.Prefix.Addr()) {
			d := fmt.Sprintf("ip addr del %s dev %s", ad.Prefix, ad.Link)
			if !slices.Contains(dels, d) {
				dels = append(dels, d)
			}
		}
	}
	if len(dels) > 0 {
		fix += " and remove the loopback address from the host side (" + strings.Join(dels, "; ") + ")"
	}
	if a.Is4() && loopbackNet4.Contains(a) {
		fix += "; route_localnet=1 would make it route but leaves pods on addresses every host treats as its own"
	}
	return fix
}

// localFix says how to stop a pod IP from being delivered locally.
func (r *run) localFix(a netip.Addr, res *fib.Result, w want) string {
	switch {
	case a.Is4() && loopbackNet4.Contains(a):
		return r.loopbackFix(a, w.devs)
	case reserved(a) != "":
		return fmt.Sprintf("give pods ordinary unicast addresses: set the IPAM range to %s or another private range", exampleRange(a))
	case res.Route != nil:
		return fmt.Sprintf("delete the local route that takes the pod IP (%s), or move the pod network out of %s", routeDel(res.Route, res.Table), res.Route.Dst)
	}
	return "move the pod network to addresses the host does not deliver to itself"
}

// nodeAddress finds the node's own address equal to a pod IP: the device
// that holds it (other than the loopback device) and its prefix.
func nodeAddress(m *fib.Model, a netip.Addr, lo string, res *fib.Result) (string, netip.Prefix, bool) {
	for ad := range m.Addrs() {
		if ad.Prefix.Addr() == a && ad.Link != lo {
			return ad.Link, ad.Prefix, true
		}
	}
	if rt := res.Route; rt != nil && rt.Type == fib.TypeLocal && rt.Dst.IsSingleIP() && rt.Dev() != "" && rt.Dev() != lo {
		return rt.Dev(), rt.Dst, true
	}
	return "", netip.Prefix{}, false
}

func nodeAddressFix(a netip.Addr, owner string, p netip.Prefix, w want) string {
	if slices.Contains(w.devs, owner) {
		return fmt.Sprintf("keep %s, the address of %s and the pods' gateway, out of the IPAM range (host-local: rangeStart above it)", a, owner)
	}
	return fmt.Sprintf("exclude %s from the IPAM range (host-local: rangeStart/rangeEnd), or give pods a subnet that does not overlap %s on %s", a, p.Masked(), owner)
}

// refusedFix says how to stop the host refusing a pod IP: remove the
// reject route or rule, or add the missing route.
func refusedFix(res *fib.Result, ip podIP, w want) string {
	if fix, ok := rejectFix(res, "the pod network "+ip.prefix.Masked().String()); ok {
		return fix
	}
	if w.known() {
		return fmt.Sprintf("add a route for the pod network %s through %s (the CNI plugin adds it with the host side's address: check that %s is up and has its address)", ip.prefix.Masked(), w.devs[0], w.devs[0])
	}
	return fmt.Sprintf("add a route for the pod network %s on the host", ip.prefix.Masked())
}

// rejectFix says how to remove the reject route or rule that refused a
// lookup for what ("the pod network 10.244.0.0/24"), if one did.
func rejectFix(res *fib.Result, what string) (string, bool) {
	if rt := res.Route; rt != nil && rejects(res) && rt.Type != fib.TypeUnicast {
		return fmt.Sprintf("delete the %s route %s (%s), or keep %s out of it", rt.Type, rt.Dst, routeDel(rt, res.Table), what), true
	}
	if rl := res.Rule; rl != nil && rl.Action != fib.ActionLookup {
		return fmt.Sprintf("delete or narrow rule %q (ip rule del pref %d), which refuses traffic to %s", ruleText(rl), rl.Priority, what), true
	}
	return "", false
}

// shadowedMessage explains a pod IP that leaves through another device: a
// default route means the pod network has no route at all.
func shadowedMessage(a netip.Addr, w want, res *fib.Result) string {
	route := routeText(res.Route, res.Table)
	if res.Route != nil && res.Route.Dst.Bits() == 0 {
		return fmt.Sprintf("pod IP %s would leave through %s%s: the host has no route for the pod network, only %s", a, res.Dev, w.notText(), route)
	}
	return fmt.Sprintf("pod IP %s would leave through %s%s: shadowed by %s", a, res.Dev, w.notText(), route)
}

func shadowedFix(ip podIP, w want, res *fib.Result) string {
	rt := res.Route
	subnet := ip.prefix.Masked()
	switch {
	case rt == nil:
		return fmt.Sprintf("route the pod network %s through %s", subnet, w.devs[0])
	case rt.Dst.Bits() == 0:
		return fmt.Sprintf("give %s its address in %s so the host gets a route for the pod network (the bridge plugin's isGateway), or add one (ip route add %s dev %s)", w.devs[0], subnet, subnet, w.devs[0])
	case rt.Protocol == "kernel":
		return fmt.Sprintf("the network %s of %s overlaps the pod network %s: choose a pod range that does not overlap it, or renumber %s", rt.Dst, rt.Dev(), subnet, rt.Dev())
	}
	return fmt.Sprintf("delete or narrow the route that shadows the pod network (%s), or choose a pod range that does not overlap %s", routeDel(rt, res.Table), rt.Dst)
}

// policyFix says how to keep a rule from diverting the pod network. A
// bridge carries the whole pod network, so a route for it in the rule's
// table also works; with ptp every pod has its own veth and /32 route in
// table main, which no single route in another table can stand for.
func (r *run) policyFix(ip podIP, w want, res *fib.Result) string {
	subnet := ip.prefix.Masked()
	before := "a rule before it"
	if p := res.Rule.Priority; p > 0 {
		before = fmt.Sprintf("ip rule add pref %d to %s lookup main", p-1, subnet)
	}
	exempt := fmt.Sprintf("exempt the pod network from rule %d (%s)", res.Rule.Priority, before)
	if l, ok := r.in.Host.Link(w.devs[0]); ok && l.Kind != fib.KindBridge {
		return fmt.Sprintf("%s: each pod is routed through a device of its own (ptp: here %s) by a route for its address alone in table main, which table %s does not have", exempt, l.Name, res.Table)
	}
	return fmt.Sprintf("%s, or route %s through %s in table %s", exempt, subnet, w.devs[0], res.Table)
}

// routeDel is the command that deletes a route; table is where the lookup
// found it, used if the route does not say.
func routeDel(rt *fib.Route, table fib.TableID) string {
	var b strings.Builder
	b.WriteString("ip route del ")
	if rt.Type != fib.TypeUnicast {
		b.WriteString(rt.Type.String())
		b.WriteByte(' ')
	}
	b.WriteString(rt.Dst.String())
	if d := rt.Dev(); d != "" && len(rt.NextHops) == 1 {
		fmt.Fprintf(&b, " dev %s", d)
	}
	if rt.Table != fib.TableUnspec {
		table = rt.Table
	}
	fmt.Fprintf(&b, " table %s", table)
	return b.String()
}

// compareKernel asks the kernel the same question as the model and
// reports a disagreement, or a failure to ask, so that a gap in the model
// never passes silently.
func (r *run) compareKernel(q fib.Query, model *fib.Result) {
	if r.in.Kernel == nil || (!r.enabled(CodeModelKernel) && !r.enabled(CodeKernelFailed)) {
		return
	}
	a := q.Dst
	kernel, err := r.in.Kernel(q)
	if err != nil {
		r.add(CodeKernelFailed, a,
			fmt.Sprintf("could not ask the kernel for the host's route to pod IP %s: %s", a, oneLine(err.Error())),
			"let fibguard use netlink in the host namespace (it needs CAP_NET_ADMIN); until then the model's answer is unverified", nil)
		return
	}
	if !kernel.Dst.IsValid() {
		kernel.Dst = a
	}
	if d := model.Diff(&kernel); len(d) > 0 {
		for i := range d {
			d[i] = tidyDiff(d[i])
		}
		r.add(CodeModelKernel, a,
			fmt.Sprintf("model and kernel disagree on the host's route to pod IP %s: model %q, kernel %q (%s)", a, model.String(), kernel.String(), strings.Join(d, "; ")),
			fmt.Sprintf("the checks used the model's answer: compare with `ip route get %s` on the node and report the difference to fibguard with a snapshot (fibguardctl snapshot)", a),
			model.Trace)
	}
}

// tidyDiff rewrites a line of fib.Result.Diff ("error:  != EINVAL",
// "src: 10.0.0.1 != invalid IP") so that a missing value reads "none".
func tidyDiff(line string) string {
	field, values, ok := strings.Cut(line, ": ")
	if !ok {
		return line
	}
	a, b, ok := strings.Cut(values, " != ")
	if !ok {
		return line
	}
	none := func(v string) string {
		if v == "" || v == "invalid IP" {
			return "none"
		}
		return v
	}
	return fmt.Sprintf("%s: %s != %s", field, none(a), none(b))
}

// oneLine joins a multi-line text, so messages stay one line in events.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
