package fib

import (
	"net/netip"
	"syscall"
)

// flow is what a lookup matches rules and routes against, the kernel's
// flowi: interfaces by name, "lo" as the input interface of locally sent
// packets.
type flow struct {
	family Family
	dst    netip.Addr
	src    netip.Addr // unspecified when the caller gave none
	iif    string
	oif    string
	mark   uint32
	tos    uint8
	uid    uint32
	proto  uint8
	sport  uint16
	dport  uint16
	hasSrc bool
	// hasSrcGiven is set when the caller gave the source (hasSrc may also
	// be set once the kernel picked one).
	hasSrcGiven bool
	ignoreL     bool // ignore link state (FIB_LOOKUP_IGNORE_LINKSTATE)
	// prefer is the device IPv6 route selection prefers (the output device,
	// or the input device of an input lookup); strict makes it required.
	prefer string
	strict bool
}

// fibResult is what a table lookup found.
type fibResult struct {
	route *Route
	// typ, prefSrc and scope are the route's; dev and gw are those of the
	// chosen next hop (nhName names it when dev is unknown).
	typ     RouteType
	prefSrc netip.Addr
	scope   Scope
	dev     *device
	gw      netip.Addr
	nhName  string
	hasNH   bool
	gwLocal bool
	// hops are, for a multipath route, the next hops the kernel may pick
	// for the flow (multipathHops4, multipathHops6); dev and gw are the
	// first's. Nil when there is one choice.
	hops  []hop
	table TableID
	rule  *Rule
}

// legacyTOSMask keeps the TOS bits that routes and rules compare
// (IPTOS_RT_MASK without the precedence bits).
const legacyTOSMask = 0x1c

// ruleMatches is fib_rule_match plus the family's own selectors.
func ruleMatches(r *Rule, fl *flow) bool {
	return ruleSelects(r, fl) != r.Not
}

func ruleSelects(r *Rule, fl *flow) bool {
	switch {
	case r.IIF != "" && r.IIF != fl.iif,
		r.OIF != "" && r.OIF != fl.oif,
		(r.Mark^fl.mark)&r.Mask != 0,
		r.L3MDev,
		r.UIDs != nil && (fl.uid < r.UIDs.Start || fl.uid > r.UIDs.End),
		r.TOS != 0 && r.TOS != fl.tos&legacyTOSMask,
		r.IPProto != 0 && r.IPProto != fl.proto,
		r.SPort != (PortRange{}) && (fl.sport < r.SPort.Start || fl.sport > r.SPort.End),
		r.DPort != (PortRange{}) && (fl.dport < r.DPort.Start || fl.dport > r.DPort.End):
		return false
	}
	if r.Dst.IsValid() && r.Dst.Bits() > 0 && !r.Dst.Contains(fl.dst) {
		return false
	}
	if r.Src.IsValid() && r.Src.Bits() > 0 {
		// IPv6 rules with a source prefix never match a flow without a
		// source; IPv4 compares the unspecified address like any other.
		if fl.family == V6 && !fl.hasSrc {
			return false
		}
		if !r.Src.Contains(fl.src) {
			return false
		}
	}
	return true
}

// lookupRules is fib_rules_lookup: it walks the family's rules in priority
// order, follows goto and nop, runs the action of each matching rule and
// applies suppressors, until a rule gives an answer or an error.
func (m *Model) lookupRules(ix *index, fl *flow, res *Result) (fibResult, syscall.Errno) {
	rules, tables := ix.rules[fam(fl.family)], ix.ruleTables[fam(fl.family)]
	for i := 0; i < len(rules); i++ {
		r := rules[i]
		if !ruleMatches(r, fl) {
			continue
		}
		switch r.Action {
		case ActionGoto:
			j := ruleIndex(rules, r.Goto)
			if j < 0 {
				continue
			}
			res.stepRule(r)
			// The kernel evaluates the target rule next, then carries on
			// after it: emulate "goto jumped" by resuming just before it.
			i = j - 1
			continue
		case ActionNop:
			res.stepRule(r)
			continue
		case ActionBlackhole:
			res.stepRule(r)
			return fibResult{rule: r}, syscall.EINVAL
		case ActionUnreachable:
			res.stepRule(r)
			return fibResult{rule: r}, syscall.ENETUNREACH
		case ActionProhibit:
			res.stepRule(r)
			return fibResult{rule: r}, syscall.EACCES
		}
		res.stepRule(r)
		t := tables[i]
		if t == nil {
			res.stepNoRoute(r.Table)
			continue
		}
		fr, err := m.tableLookup(t, fl, res)
		fr.rule = r
		if err == 0 && suppressed(ix, r, &fr, res) {
			continue
		}
		if err != syscall.EAGAIN {
			return fr, err
		}
	}
	return fibResult{}, syscall.ESRCH
}

func ruleIndex(rules []*Rule, prio uint32) int {
	for i, r := range rules {
		if r.Priority == prio {
			return i
		}
	}
	return -1
}

// suppressed is fib4_rule_suppress / fib6_rule_suppress.
func suppressed(ix *index, r *Rule, fr *fibResult, res *Result) bool {
	if r.SuppressPrefixLen >= 0 && fr.route.Dst.Bits() <= r.SuppressPrefixLen {
		res.step(Step{Kind: StepSuppress, Rule: r, Note: "prefix " + fr.route.Dst.String() + " is not longer than suppress_prefixlength"})
		return true
	}
	if r.SuppressIfGroup >= 0 && len(fr.route.NextHops) > 0 {
		// The kernel looks at the device of the route's first next hop.
		if d := ix.dev(fr.route.NextHops[0].Link); d != nil && int(d.link.Group) == r.SuppressIfGroup {
			res.step(Step{Kind: StepSuppress, Rule: r, Note: "device " + d.link.Name + " is in the suppressed group"})
			return true
		}
	}
	return false
}

// tableLookup searches one table of the flow's family; it returns EAGAIN
// when the table has no answer (no route, or a throw route) so rule
// evaluation goes on.
func (m *Model) tableLookup(t *table, fl *flow, res *Result) (fibResult, syscall.Errno) {
	if fl.family == V4 {
		return m.tableLookup4(t, fl, res)
	}
	return m.tableLookup6(t, fl, res)
}

// typeError is the kernel's fib_props[type].error: the errno a route of a
// refusing type answers with, EAGAIN for throw (back to the rules), 0 for
// the types that route packets.
func typeError(t RouteType) syscall.Errno {
	switch t {
	case TypeBlackhole:
		return syscall.EINVAL
	case TypeUnreachable:
		return syscall.EHOSTUNREACH
	case TypeProhibit:
		return syscall.EACCES
	case TypeThrow:
		return syscall.EAGAIN
	}
	return 0
}

// stepRejected records a route whose type answered the lookup with err.
func (res *Result) stepRejected(t TableID, r *Route, err syscall.Errno) {
	kind := StepRoute
	if err == syscall.EAGAIN {
		kind = StepThrow
	}
	res.step(Step{Kind: kind, Table: t, Route: r})
}
