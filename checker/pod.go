package checker

import (
	"fmt"
	"net/netip"
	"slices"
	"syscall"

	"github.com/fibguard/fibguard/fib"
)

// Destinations that stand for "anywhere" when the pod's default route is
// checked: documentation ranges, which no pod network should route
// specially. The first one no specific route or pod subnet covers is used.
var (
	probes4 = []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("203.0.113.1")}
	probes6 = []netip.Addr{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("3fff::1"), netip.MustParseAddr("2001:db8:ffff:ffff::1")}
)

// podChecks look up, inside the pod's model, each gateway of the result
// and, where the result lists a default route, an address only the
// default route covers: both must go out through the pod's interface.
func (r *run) podChecks() {
	// Each gateway once: an IP config's (which names the interface) before
	// a route's.
	seen := make(map[netip.Addr]bool)
	check := func(gw, pod netip.Addr, iface string) {
		if seen[gw] || !gw.IsValid() {
			return
		}
		seen[gw] = true
		r.checkGateway(gw, pod, r.podWant(iface, fib.FamilyOf(gw)))
	}
	for _, ip := range r.net.ips {
		check(ip.gateway, ip.addr(), ip.iface)
	}
	for _, gw := range r.net.routeGateways {
		check(gw, r.firstIP(fib.FamilyOf(gw)), "")
	}
	for _, f := range []fib.Family{fib.V4, fib.V6} {
		if r.net.defaults[f] && r.enabled(CodeDefaultRoute) {
			r.checkDefault(f)
		}
	}
}

// podWant is the pod interface a lookup must leave through: the IP
// config's interface, or else the pod interfaces with addresses of the
// family, or else every pod interface.
func (r *run) podWant(iface string, f fib.Family) want {
	if iface != "" {
		return want{devs: []string{iface}, desc: iface}
	}
	var devs []string
	for _, ip := range r.net.ips {
		if ip.iface != "" && fib.FamilyOf(ip.addr()) == f {
			devs = appendNew(devs, ip.iface)
		}
	}
	if len(devs) == 0 {
		for _, s := range r.net.sandbox {
			devs = appendNew(devs, s)
		}
	}
	return describe(r.in.Pod, devs)
}

// firstIP returns the result's first pod IP of a family, the address a
// pod-wide finding is filed under.
func (r *run) firstIP(f fib.Family) netip.Addr {
	for _, ip := range r.net.ips {
		if fib.FamilyOf(ip.addr()) == f {
			return ip.addr()
		}
	}
	return netip.Addr{}
}

// checkGateway judges the pod's route to one gateway.
func (r *run) checkGateway(gw, pod netip.Addr, w want) {
	if !r.enabled(CodeGateway) {
		return
	}
	res, err := r.in.Pod.Lookup(fib.Query{Dst: gw})
	if err != nil {
		return
	}
	r.judgePaths(&res, func(res *fib.Result) { r.judgeGateway(gw, pod, w, res) })
}

// judgeGateway turns the pod's answer for its gateway into at most one
// finding.
func (r *run) judgeGateway(gw, pod netip.Addr, w want, res *fib.Result) {
	what := fmt.Sprintf("gateway %s of pod IP %s", gw, pod)
	if !pod.IsValid() {
		what = "gateway " + gw.String()
	}
	route := routeText(res.Route, res.Table)
	out := ""
	if w.known() {
		out = ", not sent out " + w.desc
	}
	switch {
	case res.Err != 0:
		fix, ok := rejectFix(res, "the gateway "+gw.String())
		switch {
		case ok:
		case res.Err == syscall.EINVAL && !rejects(res):
			fix = fmt.Sprintf("the pod's source %s is a loopback address (127.0.0.0/8), which the kernel uses on no device but lo while route_localnet=0: move the pod network and its gateway out of 127.0.0.0/8 (for example to 10.244.0.0/16 in the IPAM config)", loopbackSource(res))
		case !w.known():
			fix = "give the pod a route to its gateway through its interface: the prefix route of its subnet, or a device route as ptp adds it"
		default:
			fix = fmt.Sprintf("give the pod a route to its gateway through %s: the prefix route of its subnet, or a device route as ptp adds it (ip route add %s dev %s scope link)", w.devs[0], gw, w.devs[0])
		}
		r.add(CodeGateway, pod, fmt.Sprintf("%s is unreachable inside the pod: the kernel refuses it (%s)", what, refusal(res)), fix, res.Trace)
	case res.Type == fib.TypeLocal || res.Dev == loopbackName(r.in.Pod):
		fix := "set the IPAM gateway to the host side's address (the bridge's, or the host veth's in ptp setups), not one of the pod's own"
		if !podOwns(r.in.Pod, gw) && res.Route != nil {
			fix = fmt.Sprintf("delete the local route that takes the gateway (%s)", routeDel(res.Route, res.Table))
		}
		r.add(CodeGateway, pod, fmt.Sprintf("%s would be delivered to %s inside the pod%s%s", what, res.Dev, out, inParens(route)), fix, res.Trace)
	case res.Type != fib.TypeUnicast:
		r.add(CodeGateway, pod, fmt.Sprintf("%s is a %s destination inside the pod on %s%s", what, res.Type, res.Dev, inParens(route)),
			"set the IPAM gateway to the host side's unicast address in the pod's subnet", res.Trace)
	case w.known() && !slices.Contains(w.devs, res.Dev):
		fix := fmt.Sprintf("use a gateway on %s's network", w.devs[0])
		if res.Route != nil {
			fix = fmt.Sprintf("delete or narrow the route that sends it through %s (%s), or use a gateway on %s's network", res.Dev, routeDel(res.Route, res.Table), w.devs[0])
		}
		r.add(CodeGateway, pod, fmt.Sprintf("%s would leave the pod through %s%s", what, res.Dev, w.notText()+inParens(route)), fix, res.Trace)
	}
}

// podOwns reports whether an address is one of the pod's own.
func podOwns(m *fib.Model, a netip.Addr) bool {
	for ad := range m.Addrs() {
		if ad.Prefix.Addr() == a {
			return true
		}
	}
	return false
}

// checkDefault judges the pod's default route of a family, which the CNI
// result says it set up, by looking up an address nothing more specific
// covers.
func (r *run) checkDefault(f fib.Family) {
	probe := r.probe(f)
	res, err := r.in.Pod.Lookup(fib.Query{Dst: probe})
	if err != nil {
		return
	}
	r.judgePaths(&res, func(res *fib.Result) { r.judgeDefault(f, probe, res) })
}

// judgeDefault turns the pod's answer for the probe of its default route
// into at most one finding.
func (r *run) judgeDefault(f fib.Family, probe netip.Addr, res *fib.Result) {
	w := r.podWant("", f)
	fam := "IPv4"
	if f == fib.V6 {
		fam = "IPv6"
	}
	pod := r.firstIP(f)
	route := routeText(res.Route, res.Table)
	switch {
	case res.Err != 0:
		fix, ok := rejectFix(res, "the pod's outside traffic")
		if !ok {
			fix = "the CNI result lists a default route but the pod has none that works: check the IPAM config's routes and that the gateway is reachable on the pod's interface"
		}
		r.add(CodeDefaultRoute, pod,
			fmt.Sprintf("the pod's %s default route does not work: the kernel refuses %s inside the pod (%s)", fam, probe, refusal(res)), fix, res.Trace)
	case res.Type == fib.TypeLocal || res.Dev == loopbackName(r.in.Pod):
		fix := "remove the local route that takes all traffic inside the pod"
		if res.Route != nil {
			fix = fmt.Sprintf("delete the local route that takes all traffic inside the pod (%s)", routeDel(res.Route, res.Table))
		}
		r.add(CodeDefaultRoute, pod,
			fmt.Sprintf("the pod's %s default route delivers to %s inside the pod%s (%s matched %s)", fam, res.Dev, w.notText(), probe, route), fix, res.Trace)
	case res.Type != fib.TypeUnicast:
		r.add(CodeDefaultRoute, pod,
			fmt.Sprintf("the pod's %s default route sends %s as %s on %s (%s)", fam, probe, res.Type, res.Dev, route),
			"give the pod a unicast default route via its gateway", res.Trace)
	case w.known() && !slices.Contains(w.devs, res.Dev):
		r.add(CodeDefaultRoute, pod,
			fmt.Sprintf("the pod's %s default route leaves through %s%s (%s matched %s)", fam, res.Dev, w.notText(), probe, route),
			fmt.Sprintf("if %s should carry the default route, drop the default route from this network's IPAM routes; otherwise remove the other default route or give the one through %s a lower metric", res.Dev, w.devs[0]),
			res.Trace)
	}
}

// probe picks the first probe address of the family that no route of the
// pod more specific than a default route, and no pod subnet, covers.
func (r *run) probe(f fib.Family) netip.Addr {
	cands := probes4
	if f == fib.V6 {
		cands = probes6
	}
	covered := func(a netip.Addr) bool {
		for rt := range r.in.Pod.Routes() {
			if rt.Dst.Bits() > 0 && rt.Dst.Contains(a) {
				return true
			}
		}
		for _, ip := range r.net.ips {
			if ip.prefix.Masked().Contains(a) {
				return true
			}
		}
		return false
	}
	for _, c := range cands {
		if !covered(c) {
			return c
		}
	}
	return cands[0]
}
