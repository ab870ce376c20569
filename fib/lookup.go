package fib

import (
	"fmt"
	"net/netip"
	"syscall"
)

// Lookup answers where the kernel sends a packet to q.Dst, and why. It is the
// model's `ip route get`: with q.IIF set it is an input lookup (a packet
// arriving on that device), otherwise an output lookup (a packet the host
// sends). A refusal the kernel would give (EINVAL, ENETUNREACH,
// EHOSTUNREACH, EACCES ...) is an answer, in Result.Err; the error return is
// only for a query that cannot be asked (an invalid address, families that
// do not agree).
//
// Equivalent to: ip route get DST [from SRC] [iif DEV] [oif DEV] [mark N].
func (m *Model) Lookup(q Query) (Result, error) {
	if !q.Dst.IsValid() {
		return Result{}, fmt.Errorf("lookup: invalid destination")
	}
	if q.Src.IsValid() && FamilyOf(q.Src) != FamilyOf(q.Dst) {
		return Result{}, fmt.Errorf("lookup %s: source %s is of another family", q.Dst, q.Src)
	}
	if q.IIF != "" && !q.Src.IsValid() && FamilyOf(q.Dst) == V4 {
		return Result{}, fmt.Errorf("lookup %s: an input lookup needs a source address", q.Dst)
	}
	ix := m.index()
	res := Result{Dst: q.Dst, noTrace: q.NoTrace}
	if q.IIF == "" && q.OIF == "" && !q.Src.IsValid() {
		if q.Dst.Is4() && m.output4Fast(ix, q.Dst, &res) {
			return res, nil
		}
		if !q.Dst.Is4() && m.output6Fast(ix, q.Dst, &res) {
			return res, nil
		}
	}
	m.lookup(ix, q, &res)
	return res, nil
}

// lookup is the reference: the kernel's decisions step by step (rules,
// tables, route types, device and source), for every query. Lookup answers
// common queries faster where an accelerated path applies; tests compare
// those answers, traces included, with this one's.
func (m *Model) lookup(ix *index, q Query, res *Result) {
	fl := flow{
		family: FamilyOf(q.Dst), dst: q.Dst, src: q.Src, hasSrc: q.Src.IsValid(), hasSrcGiven: q.Src.IsValid(),
		iif: q.IIF, oif: q.OIF, mark: q.Mark, tos: q.TOS, uid: q.UID,
		proto: q.IPProto, sport: q.SPort, dport: q.DPort,
	}
	if !fl.hasSrc {
		fl.src = unspecified(fl.family)
	}
	switch {
	case fl.family == V4 && q.IIF != "":
		m.input4(ix, &fl, res)
	case fl.family == V4:
		m.output4(ix, &fl, res)
	case q.IIF != "":
		m.input6(ix, &fl, res)
	default:
		m.output6(ix, &fl, res)
	}
}

func unspecified(f Family) netip.Addr {
	if f == V4 {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}

// finish fills the result from a found route.
func (res *Result) found(fr fibResult) {
	res.Route = fr.route
	res.Rule = fr.rule
	res.Table = fr.table
	if fr.route != nil {
		res.Type = fr.typ
	}
}

// errNote explains a refusal that came from a route or rule type.
func errNote(fr fibResult, err syscall.Errno) string {
	switch {
	case fr.route != nil:
		return fmt.Sprintf("%s route %s in table %s", fr.route.Type, fr.route.Dst, fr.table)
	case fr.rule != nil && fr.rule.Action != ActionLookup:
		return fmt.Sprintf("rule %d action %s", fr.rule.Priority, fr.rule.Action)
	case err == syscall.ESRCH || err == syscall.EAGAIN || err == syscall.ENETUNREACH:
		return "no rule led to a route for the destination"
	}
	return "lookup failed"
}
