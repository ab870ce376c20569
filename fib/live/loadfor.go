package live

import (
	"cmp"
	"errors"
	"fmt"
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
// It reads, as Load does, the links, the addresses, the rules of both
// families, the IPv4 device sysctls and whether the IPv4 local and main
// tables are merged; and every route of table local, IPv4 and IPv6, with
// a dump the kernel filters by table (strict checking), or, on a kernel
// without strict checking, a full dump filtered here. Then, for each
// destination, it asks the kernel which FIB entry matches it (RTM_GETROUTE
// with RTM_F_FIB_MATCH, `ip route get fibmatch DST`) and adds that route
// to the model unless it is already there. The merged state is read with
// one such request for an address of table local, which the kernel
// reports in table local when the tables are apart and in main when they
// are merged, instead of from /proc/net/fib_trie, which prints every route.
//
// Why the partial model gives the same answer. The model holds a subset of
// the kernel's routes and all of its rules, links, addresses and sysctls.
// Let R, in table T, be the route the kernel matched for DST.
//   - Rules are walked in order, and a table lookup depends only on the
//     table and the flow, not on the rule. Each table consulted before the
//     rule that returned R contributed nothing to the kernel's answer: it
//     had no covering route, or its match was a throw route, or a rule's
//     suppressor dropped the match. A subset of such a table holds no
//     usable covering route longer than the kernel's match.
//   - In T, R is the longest usable match and the first of its prefix in
//     the kernel's order; the model holds R, so no route of the model's T
//     wins over it. Usability (dead, linkdown, TOS) does not depend on the
//     destination.
//   - While IPv4 local and main are merged, the kernel does one
//     longest-prefix match over both, then table default: R is the longest
//     match over local and main, and the model, which has all of local and
//     R, finds it the same way. A local route longer than R cannot exist
//     (the kernel would have matched it); a shorter one loses to R.
//   - Suppressing a route by prefix length (suppress_prefixlength N)
//     suppresses every shorter route as well, so a table that the kernel
//     left through a suppressed match is left by the model too.
//
// The model may still hold, in a table before T, a route that covers DST
// and that the kernel did not take because a longer throw route, or a
// route suppressed by its device group, came first — a route of table
// local, or one fetched for another destination. LoadFor therefore looks
// every destination up in the model it built: when the model's route is
// not the kernel's R, and whenever the kernel refused the lookup (then
// there is no R to fetch: no route, a reject route or rule, or a refusal
// after the route was found, as for a loopback source on a bridge), it
// reads whole each table that the model's lookup consulted and repeats,
// until every destination either ends at the kernel's R or is decided by
// tables that are all complete. A lookup over complete tables and all the
// rules is Load's lookup. This costs dumps of big tables only for
// destinations the kernel refuses or that a throw route hides: a refused
// IPv4 lookup is first retried with a source address of the host, which
// does not change the rule walk when no IPv4 rule selects on the source;
// if the kernel then names R, the refusal came after the lookup, and R
// suffices.
//
// Other FIB entries are not trusted as the kernel reports them and cause
// the same complete reads: for IPv4 multicast destinations and
// 255.255.255.255 the kernel reports the route with the type of the
// resulting dst (multicast, broadcast), not the route's own; an IPv6
// multipath route is reported starting with the next hop it chose.
//
// Limits:
//   - Only the plain output lookup of each given destination is promised.
//     A lookup with a source, mark, output or input device, TOS or user,
//     and lookups of other destinations, may walk rules and tables that
//     the model holds only in part, and differ from Load's.
//   - The trace shows only the routes the model holds: a throw route or a
//     suppressed route that the kernel passed over in an earlier table may
//     be missing from it ("no usable route" instead).
//   - The argument takes the model's lookup to equal the kernel's, as the
//     differential tests prove it; where they disagree, which a caller
//     comparing the two (the checker does) reports, the partial model may
//     differ from Load's as well.
//   - The namespace is read with several requests; a change between them
//     can give a model that mixes states, as with Load.
func LoadFor(netns string, dsts []netip.Addr) (*fib.Model, error) {
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
	t, err := open(netns)
	if err != nil {
		return nil, fmt.Errorf("load for destinations: %w", err)
	}
	defer t.close()
	for attempt := 1; ; attempt++ {
		m, err := t.loadFor(uniq)
		if errors.Is(err, errChanged) && attempt < loadAttempts {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("load %s for destinations: %w", t, err)
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
// complete, and the merged state of the kernel.
type partial struct {
	m        *fib.Model
	name     linkNamer
	complete map[tableKey]bool
	// merged is the kernel's IPv4 merged state as the model computes it:
	// default rules and not Unmerged.
	merged bool
}

func (t *target) loadFor(dsts []netip.Addr) (*fib.Model, error) {
	m := &fib.Model{}
	name, devs, err := t.loadBase(m)
	if err != nil {
		return nil, err
	}
	p := &partial{m: m, name: name, complete: make(map[tableKey]bool)}
	for _, f := range []fib.Family{fib.V4, fib.V6} {
		routes, err := t.loadTable(f, fib.TableLocal, name)
		if err != nil {
			return nil, err
		}
		m.Routes = append(m.Routes, routes...)
		p.complete[tableKey{f, fib.TableLocal}] = true
	}
	st, err := t.readProc(devs, false)
	if err != nil {
		return nil, err
	}
	m.Conf = st.conf
	if m.Unmerged, err = t.unmergedFor(m, devs); err != nil {
		return nil, err
	}
	p.merged = !m.Unmerged && defaultRules4(m.Rules)

	matches := make([]match, len(dsts))
	for i, d := range dsts {
		if matches[i], err = t.fibMatch(m, d, name); err != nil {
			return nil, err
		}
		if r := matches[i].route; r != nil && !p.holds(r) {
			m.Routes = append(m.Routes, *r)
		}
	}
	// complete leaves the model indexed: its last lookups ran on the final
	// routes.
	if err := t.complete(p, matches); err != nil {
		return nil, err
	}
	return m, nil
}

// fibMatch asks the kernel which FIB entry an output lookup of dst
// matches. When the kernel refuses an IPv4 lookup with EINVAL, it asks
// again with a source address of the host (see LoadFor).
func (t *target) fibMatch(m *fib.Model, dst netip.Addr, name linkNamer) (match, error) {
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
func hostSource4(m *fib.Model) (netip.Addr, bool) {
	for _, a := range m.Addrs {
		ip := a.Prefix.Addr()
		if ip.Is4() && !ip.IsLoopback() && !ip.IsMulticast() && !ip.IsUnspecified() &&
			ip.As4()[0] != 0 && ip != netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// unmergedFor finds whether the kernel keeps the IPv4 local and main
// tables apart, giving the same answer as Load without reading
// /proc/net/fib_trie:
//   - rules other than the default ones: apart (adding or deleting a rule
//     splits them for good);
//   - default rules and an empty local table: as Load, merged (both states
//     give the same lookups);
//   - otherwise the kernel is asked for the FIB entry of an address of a
//     local route: while merged, its lookup searches main's trie and the
//     entry is reported in table main, otherwise rule 0 finds it in table
//     local. If no such address can be asked, fib_trie is read as Load
//     does.
func (t *target) unmergedFor(m *fib.Model, devs []string) (bool, error) {
	if !defaultRules4(m.Rules) {
		return true, nil
	}
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
		ans, err := t.getRoute(fib.Query{Dst: probe}, unix.RTM_F_LOOKUP_TABLE|unix.RTM_F_FIB_MATCH)
		if err != nil {
			return false, fmt.Errorf("route get fibmatch %s: %w", probe, err)
		}
		if ans.found {
			hdr, attrs, err := parseMsg(ans.msg)
			if err != nil {
				return false, fmt.Errorf("route get fibmatch %s: %w", probe, err)
			}
			table := fib.TableID(hdr.Table)
			for _, a := range attrs {
				if a.Attr.Type == unix.RTA_TABLE {
					v, err := attrU32(a)
					if err != nil {
						return false, fmt.Errorf("route get fibmatch %s: %w", probe, err)
					}
					table = fib.TableID(v)
				}
			}
			switch table {
			case fib.TableLocal:
				return true, nil
			case fib.TableMain:
				return false, nil
			}
		}
	}
	st, err := t.readProc(devs, true)
	if err != nil {
		return false, err
	}
	return unmerged(st.trie, m.Rules), nil
}

// holds reports whether the model already has route r. The kernel reports
// an entry of table local in table main while the tables are merged.
func (p *partial) holds(r *fib.Route) bool {
	key := routeKey(r, p.merged)
	for i := range p.m.Routes {
		if routeKey(&p.m.Routes[i], p.merged) == key {
			return true
		}
	}
	return false
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
// completes at least one table, so it ends.
func (t *target) complete(p *partial, matches []match) error {
	for {
		p.m.Invalidate()
		need := make(map[tableKey]bool)
		for _, fm := range matches {
			res, err := p.m.Lookup(fib.Query{Dst: fm.dst})
			if err != nil {
				return fmt.Errorf("model lookup of %s: %w", fm.dst, err)
			}
			if fm.route != nil && res.Route != nil && routeKey(res.Route, p.merged) == routeKey(fm.route, p.merged) {
				continue
			}
			for _, k := range consulted(&res, fib.FamilyOf(fm.dst)) {
				if !p.complete[k] {
					need[k] = true
				}
			}
		}
		if len(need) == 0 {
			return nil
		}
		keys := make([]tableKey, 0, len(need))
		for k := range need {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b tableKey) int {
			return cmp.Or(cmp.Compare(a.family, b.family), cmp.Compare(a.id, b.id))
		})
		for _, k := range keys {
			routes, err := t.loadTable(k.family, k.id, p.name)
			if err != nil {
				return err
			}
			p.m.Routes = slices.DeleteFunc(p.m.Routes, func(r fib.Route) bool { return r.Family == k.family && r.Table == k.id })
			p.m.Routes = append(p.m.Routes, routes...)
			p.complete[k] = true
		}
	}
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
