package live

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/fibguard/fibguard/fib"
	"golang.org/x/sys/unix"
)

// LoadFor reads a model of a network namespace that answers the output
// lookups of the given destinations (fib.Query{Dst: dst}: no source, mark,
// output device or TOS, as root) exactly as Load's model would, without
// dumping big routing tables. It serves callers that ask about a few
// addresses on a node that may hold a full Internet table, such as the
// CNI plugin on every pod ADD.
//
// What it reads:
//   - as Load does: the links, the addresses, the rules of both families;
//   - as Load does, the IPv4 sysctls of "all" and of every device (the
//     devices' come with the link dump);
//   - whether the IPv4 tables local and main are merged, from one route
//     lookup of an address of the host (RTM_GETROUTE with RTM_F_FIB_MATCH,
//     `ip route get fibmatch ADDR`): its local route is reported in table
//     local while the tables are apart, in main while they are merged.
//     Load reads /proc/net/fib_trie instead, which prints every route;
//   - every route of table local, with a dump the kernel filters by table
//     (NETLINK_GET_STRICT_CHK and RTA_TABLE; without strict checking, a
//     full dump filtered here), except IPv4's while the tables are
//     merged: the kernel then keeps local's routes in main's trie, and
//     dumping local walks every route of main (2 ms for 100,000); and
//     IPv6's only when a destination is IPv6;
//   - for each destination, the FIB entry the kernel matches
//     (RTM_F_FIB_MATCH, `ip route get fibmatch DST`), added unless the
//     model holds it already.
//
// Why the partial model gives the same answer. The model holds a subset of
// the kernel's routes and all of its rules, links and addresses. Let R, in
// table T, be the entry the kernel matched for DST.
//   - Rules are walked in order, and a table lookup depends only on the
//     table and the flow, not on the rule. Each table consulted before the
//     rule that returned R contributed nothing to the kernel's answer: it
//     had no usable covering route, or its match was a throw route, or a
//     rule's suppressor dropped the match. A subset of such a table holds
//     no usable covering route longer than the kernel's match.
//   - In T, R is the longest usable match and the first of its prefix in
//     the kernel's order; the model holds R, so no route of the model's T
//     wins over it. Usability (dead, linkdown, TOS) does not depend on the
//     destination.
//   - While IPv4 local and main are merged, the kernel does one
//     longest-prefix match over both, then table default. R is the longest
//     match over local and main: a local route longer than R does not
//     exist (the kernel would have matched it), a shorter one loses to R,
//     so the model needs none of local's other routes.
//   - Suppressing a route by prefix length (suppress_prefixlength N)
//     suppresses every shorter route as well, so a table that the kernel
//     left through a suppressed match is left by the model too.
//
// The model may still hold, in a table before T, a route that covers DST
// and that the kernel did not take because a longer throw route, or a
// route suppressed by its device group, came first: a route of table
// local, or one fetched for another destination. So LoadFor looks every
// destination up in the model it built. When the model's route is not R,
// and whenever the kernel refused the lookup (there is no R to fetch
// then: no route, a reject route or rule, or a refusal after the route
// was found, as for a loopback source on a bridge), it reads whole each
// table that the model's lookup consulted, and repeats until every
// destination either ends at R or is decided by complete tables only. A
// lookup over complete tables and all the rules is Load's lookup. Big
// tables are read only for destinations the kernel refuses or that a
// throw route hides; and a refused IPv4 lookup is first asked again with a
// source address of the host, which does not change the rule walk when no
// IPv4 rule selects on the source: if the kernel then names R, the
// refusal came after the lookup, and R suffices.
//
// Entries the kernel does not report faithfully are not trusted, and cause
// the same complete reads: for IPv4 multicast destinations and
// 255.255.255.255 the kernel reports the entry with the type of the
// resulting route (multicast, broadcast), not its own; an IPv6 multipath
// route is reported starting with the next hop the kernel chose.
//
// Limits:
//   - Only the plain output lookup of each given destination is promised.
//     A lookup with a source, mark, output or input device, TOS or user,
//     and lookups of other destinations, may walk rules and tables that
//     the model holds in part, and differ from Load's.
//   - The trace shows only the routes the model holds: a throw route or a
//     suppressed route that the kernel passed over in an earlier table may
//     be missing from it ("no usable route" instead).
//   - While IPv4 local and main are merged the kernel reports every entry
//     of the merged trie in table main. An entry of type local or
//     broadcast is taken to be in table local, any other in main: that is
//     where the kernel puts its own routes and where ip(8) puts a user's
//     routes of those types unless told otherwise. A route a user put in
//     the other table carries the wrong table in the model (lookups are
//     unaffected: the two tables are one trie).
//   - The argument takes the model's lookup to equal the kernel's, as the
//     differential tests prove it; where they disagree, which a caller
//     comparing the two (the checker does) reports, the partial model may
//     differ from Load's as well.
//   - The namespace is read with several requests; a change between them
//     can give a model that mixes states, as with Load.
func LoadFor(netns string, dsts []netip.Addr) (*fib.Model, error) {
	n, err := Open(netns)
	if err != nil {
		return nil, fmt.Errorf("load for destinations: %w", err)
	}
	defer n.Close()
	return n.LoadFor(dsts)
}

// LoadFor is the package's LoadFor on the open namespace.
func (n *Namespace) LoadFor(dsts []netip.Addr) (*fib.Model, error) {
	if n.t == nil {
		return nil, fmt.Errorf("load for destinations: %w", errClosed)
	}
	uniq := make([]netip.Addr, 0, len(dsts))
	for i, d := range dsts {
		if !d.IsValid() {
			return nil, fmt.Errorf("load for destinations: destination %d is not a valid address", i)
		}
		d = d.WithZone("")
		if !slices.Contains(uniq, d) {
			uniq = append(uniq, d)
		}
	}
	for attempt := 1; ; attempt++ {
		m, err := n.t.loadFor(uniq)
		if errors.Is(err, errChanged) && attempt < loadAttempts {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("load %s for destinations: %w", n.t, err)
		}
		return m, nil
	}
}

// tableKey names a routing table of one family.
type tableKey struct {
	family fib.Family
	id     fib.TableID
}

// match is the kernel's answer for one destination: the FIB entry it
// matched, or nil when it refused the lookup or its entry cannot be
// trusted as reported.
type match struct {
	dst   netip.Addr
	route *fib.Route
}

// partial is a model under construction: which of its tables are
// complete, whose sysctls it has read, and the kernel's merged state.
type partial struct {
	m        *fib.State
	name     linkNamer
	complete map[tableKey]bool
	// merged is the kernel's IPv4 merged state: default rules and not
	// Unmerged. local and main are then one trie, complete together.
	merged bool
	// keys are the routeKeys of the model's routes, made on first use
	// by add (before any table is completed).
	keys map[string]bool
}

func (t *target) loadFor(dsts []netip.Addr) (*fib.Model, error) {
	m := &fib.State{}
	name, err := t.loadBase(m)
	if err != nil {
		return nil, err
	}
	st, err := t.readProc(false)
	if err != nil {
		return nil, err
	}
	maps.Copy(m.Conf, st.conf)
	p := &partial{m: m, name: name, complete: make(map[tableKey]bool)}
	// IPv6's table local only for IPv6 destinations: no IPv4 lookup
	// consults it, and most pods have IPv4 addresses only.
	if slices.ContainsFunc(dsts, netip.Addr.Is6) {
		if err := t.completeTable(p, tableKey{fib.V6, fib.TableLocal}); err != nil {
			return nil, err
		}
	}
	if err := t.mergedState(p); err != nil {
		return nil, err
	}
	matches := make([]match, len(dsts))
	for i, d := range dsts {
		if matches[i], err = t.fibMatch(m, d, name); err != nil {
			return nil, err
		}
		r := matches[i].route
		if r == nil {
			continue
		}
		if p.merged && r.Family == fib.V4 && r.Table == fib.TableMain && (r.Type == fib.TypeLocal || r.Type == fib.TypeBroadcast) {
			r.Table = fib.TableLocal
		}
		p.add(r)
	}
	// complete returns the model indexed: its last lookups ran on the
	// final routes.
	return t.complete(p, matches)
}

// completeTable reads a table whole into the model, in place of the routes
// of it the model held. While IPv4 local and main are merged, reading one
// of them reads the other too: they are one trie, and a lookup consults
// both.
func (t *target) completeTable(p *partial, k tableKey) error {
	keys := []tableKey{k}
	if p.merged && k.family == fib.V4 && (k.id == fib.TableLocal || k.id == fib.TableMain) {
		keys = []tableKey{{fib.V4, fib.TableLocal}, {fib.V4, fib.TableMain}}
	}
	for _, k := range keys {
		if p.complete[k] {
			continue
		}
		routes, err := t.loadTable(k.family, k.id, p.name)
		if err != nil {
			return err
		}
		p.m.Routes = slices.DeleteFunc(p.m.Routes, func(r fib.Route) bool { return r.Family == k.family && r.Table == k.id })
		p.m.Routes = append(p.m.Routes, routes...)
		p.complete[k] = true
	}
	return nil
}

// mergedState finds whether the kernel keeps the IPv4 local and main
// tables apart, giving the same answer as Load, and reads IPv4's table
// local whole unless they are merged:
//   - rules other than the default ones: apart (adding or deleting a rule
//     splits them for good);
//   - otherwise the kernel is asked for the FIB entry of an IPv4 address of
//     the host, its local route: reported in table local, the tables are
//     apart; in main, merged;
//   - if the host has no IPv4 address, or the answer is not that local
//     route (a user deleted it), table local is read whole and the state
//     found as unmergedFor says.
func (t *target) mergedState(p *partial) error {
	m := p.m
	local4 := tableKey{fib.V4, fib.TableLocal}
	if !defaultRules4(m.Rules) {
		m.Unmerged = true
		return t.completeTable(p, local4)
	}
	if a, ok := hostAddr4(m); ok {
		table, ok, err := t.localEntryTable(a)
		if err != nil {
			return err
		}
		switch {
		case ok && table == fib.TableLocal:
			m.Unmerged = true
			return t.completeTable(p, local4)
		case ok && table == fib.TableMain:
			p.merged = true
			return nil
		}
	}
	if err := t.completeTable(p, local4); err != nil {
		return err
	}
	unmerged, err := t.unmergedFor(m)
	if err != nil {
		return err
	}
	m.Unmerged = unmerged
	p.merged = !unmerged
	return nil
}

// hostAddr4 returns an IPv4 address of the host, which has a local route.
func hostAddr4(m *fib.State) (netip.Addr, bool) {
	for _, a := range m.Addrs {
		if ip := a.Prefix.Addr(); ip.Is4() && !ip.IsUnspecified() && !ip.IsMulticast() {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// localEntryTable asks the kernel for the FIB entry an output lookup of a
// matches and returns the table it reports, if the entry is the local
// route of a (local a/32).
func (t *target) localEntryTable(a netip.Addr) (fib.TableID, bool, error) {
	ans, err := t.getRoute(fib.Query{Dst: a}, unix.RTM_F_LOOKUP_TABLE|unix.RTM_F_FIB_MATCH)
	if err != nil {
		return 0, false, fmt.Errorf("route get fibmatch %s: %w", a, err)
	}
	if !ans.found {
		return 0, false, nil
	}
	hdr, attrs, err := parseMsg(ans.msg)
	if err != nil {
		return 0, false, fmt.Errorf("route get fibmatch %s: %w", a, err)
	}
	table := fib.TableID(hdr.Table)
	var dst netip.Prefix
	for _, at := range attrs {
		switch at.Attr.Type {
		case unix.RTA_TABLE:
			v, err := attrU32(at)
			if err != nil {
				return 0, false, fmt.Errorf("route get fibmatch %s: %w", a, err)
			}
			table = fib.TableID(v)
		case unix.RTA_DST:
			if dst, err = attrPrefix(at, hdr.Dst_len); err != nil {
				return 0, false, fmt.Errorf("route get fibmatch %s: %w", a, err)
			}
		}
	}
	if fib.RouteType(hdr.Type) != fib.TypeLocal || dst != netip.PrefixFrom(a, 32) {
		return 0, false, nil
	}
	return table, true, nil
}

// fibMatch asks the kernel which FIB entry an output lookup of dst
// matches. When the kernel refuses an IPv4 lookup with EINVAL, it asks
// again with a source address of the host (see LoadFor).
func (t *target) fibMatch(m *fib.State, dst netip.Addr, name linkNamer) (match, error) {
	fm := match{dst: dst}
	if dst.Is4() && (dst.IsMulticast() || dst == netip.AddrFrom4([4]byte{255, 255, 255, 255})) {
		return fm, nil
	}
	q := fib.Query{Dst: dst}
	ans, err := t.getRoute(q, unix.RTM_F_LOOKUP_TABLE|unix.RTM_F_FIB_MATCH)
	if err != nil {
		return fm, fmt.Errorf("route get fibmatch %s: %w", dst, err)
	}
	if ans.refused == unix.EINVAL && dst.Is4() && !rulesSelectSource4(m.Rules) {
		if src, ok := hostSource4(m); ok {
			q.Src = src
			if ans, err = t.getRoute(q, unix.RTM_F_LOOKUP_TABLE|unix.RTM_F_FIB_MATCH); err != nil {
				return fm, fmt.Errorf("route get fibmatch %s from %s: %w", dst, src, err)
			}
		}
	}
	if !ans.found {
		return fm, nil
	}
	r, err := parseRoute(ans.msg, name)
	if err != nil {
		return fm, fmt.Errorf("route get fibmatch %s: answer: %w", dst, err)
	}
	if r.Family == fib.V6 && len(r.NextHops) > 1 {
		return fm, nil
	}
	fm.route = &r
	return fm, nil
}

// rulesSelectSource4 reports whether an IPv4 rule selects on the source
// address, so that giving a lookup a source may change the rule walk.
func rulesSelectSource4(rules []fib.Rule) bool {
	for _, r := range rules {
		if r.Family == fib.V4 && r.Src.IsValid() && r.Src.Bits() > 0 {
			return true
		}
	}
	return false
}

// hostSource4 picks an IPv4 address of the host that the kernel accepts
// as the source of an output lookup and that is not a loopback address.
func hostSource4(m *fib.State) (netip.Addr, bool) {
	for _, a := range m.Addrs {
		ip := a.Prefix.Addr()
		if ip.Is4() && !ip.IsLoopback() && !ip.IsMulticast() && !ip.IsUnspecified() &&
			ip.As4()[0] != 0 && ip != netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// unmergedFor decides the merged state with default rules and IPv4's
// table local read whole, without reading /proc/net/fib_trie unless it
// must: an empty local table counts as merged, as with Load (both states
// give the same lookups); otherwise the kernel is asked for the entry of a
// local route of table local, reported in table local while the tables
// are apart and in main while merged; if no such route can be asked,
// fib_trie is read as Load does.
func (t *target) unmergedFor(m *fib.State) (bool, error) {
	var probe netip.Addr
	hasLocal := false
	for _, r := range m.Routes {
		if r.Family != fib.V4 || r.Table != fib.TableLocal {
			continue
		}
		hasLocal = true
		if r.Type == fib.TypeLocal && r.Dst.IsSingleIP() && len(r.NextHops) == 1 && !r.NextHops[0].Dead {
			if a := r.Dst.Addr(); !a.IsMulticast() && a.As4()[0] != 0 && a != netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
				probe = a
				break
			}
		}
	}
	if !hasLocal {
		return false, nil
	}
	if probe.IsValid() {
		table, ok, err := t.localEntryTable(probe)
		if err != nil {
			return false, err
		}
		switch {
		case ok && table == fib.TableLocal:
			return true, nil
		case ok && table == fib.TableMain:
			return false, nil
		}
	}
	st, err := t.readProc(true)
	if err != nil {
		return false, err
	}
	return unmerged(st.trie, m.Rules), nil
}

// add adds a route the kernel matched unless the model holds it already
// (a route of a table read whole, or one fetched for another destination).
func (p *partial) add(r *fib.Route) {
	if p.keys == nil {
		p.keys = make(map[string]bool, len(p.m.Routes))
		for i := range p.m.Routes {
			p.keys[routeKey(&p.m.Routes[i], p.merged)] = true
		}
	}
	if key := routeKey(r, p.merged); !p.keys[key] {
		p.keys[key] = true
		p.m.Routes = append(p.m.Routes, *r)
	}
}

// routeKey is a route's canonical text, with table local written as main
// for IPv4 while the tables are merged.
func routeKey(r *fib.Route, merged bool) string {
	c := *r
	if merged && c.Family == fib.V4 && c.Table == fib.TableLocal {
		c.Table = fib.TableMain
	}
	b, _ := c.MarshalText() // never fails
	return string(b)
}

// complete looks each destination up in the model and reads whole every
// table its lookup consulted, until each lookup ends at the kernel's
// entry or consults complete tables only (see LoadFor). Each round
// completes at least one table, so it ends. It returns the model of the
// last round.
func (t *target) complete(p *partial, matches []match) (*fib.Model, error) {
	for {
		m := fib.FromState(*p.m)
		need := make(map[tableKey]bool)
		for _, fm := range matches {
			res, err := m.Lookup(fib.Query{Dst: fm.dst})
			if err != nil {
				return nil, fmt.Errorf("model lookup of %s: %w", fm.dst, err)
			}
			if fm.route != nil && res.Route != nil && routeKey(res.Route, p.merged) == routeKey(fm.route, p.merged) {
				// The right entry; but whether its gateway is used was
				// decided when the route was added, by the route that
				// resolved the gateway then (fib_check_nh_v4_gw), which
				// may be in a table not read yet. The kernel's answer
				// tells.
				agree, err := t.gatewayAgrees(fm.dst, &res)
				if err != nil {
					return nil, err
				}
				if agree {
					continue
				}
			}
			for _, k := range consulted(&res, fib.FamilyOf(fm.dst)) {
				if !p.complete[k] {
					need[k] = true
				}
			}
		}
		if len(need) == 0 {
			return m, nil
		}
		keys := make([]tableKey, 0, len(need))
		for k := range need {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b tableKey) int {
			return cmp.Or(cmp.Compare(a.family, b.family), cmp.Compare(a.id, b.id))
		})
		for _, k := range keys {
			if err := t.completeTable(p, k); err != nil {
				return nil, err
			}
		}
	}
}

// gatewayAgrees reports whether the model's answer for dst uses a gateway
// exactly when the kernel's does. Only IPv4 answers with a gateway are
// asked about: the kernel drops a gateway that resolved to a local address
// when the route was added.
func (t *target) gatewayAgrees(dst netip.Addr, res *fib.Result) (bool, error) {
	if !dst.Is4() || !res.Gateway.IsValid() || res.ErrName() != "" {
		return true, nil
	}
	k, err := t.routeGet(fib.Query{Dst: dst})
	if err != nil {
		return false, fmt.Errorf("route get %s: %w", dst, err)
	}
	refused := k.ErrName() != ""
	return refused || k.Gateway == res.Gateway, nil
}

// consulted lists the tables a lookup's trace shows it searched: the
// table of every lookup rule it took, every table it found a route, a
// throw or nothing in, and, while IPv4 local and main are merged, main
// and default.
func consulted(res *fib.Result, family fib.Family) []tableKey {
	var keys []tableKey
	add := func(id fib.TableID) {
		if k := (tableKey{family, id}); id != fib.TableUnspec && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	for _, s := range res.Trace {
		switch s.Kind {
		case fib.StepMerged:
			add(fib.TableMain)
			add(fib.TableDefault)
		case fib.StepRule:
			if s.Rule != nil && s.Rule.Action == fib.ActionLookup {
				add(s.Rule.Table)
			}
		case fib.StepNoRoute, fib.StepRoute, fib.StepThrow, fib.StepError, fib.StepSuppress:
			add(s.Table)
		}
	}
	return keys
}
