package iproute

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"

	"github.com/fibguard/fibguard/fib"
)

// unsupportedSelectors are rule selectors of newer kernels and iproute2
// that the model cannot represent. Ignoring one would make the rule match
// packets the kernel does not send to it, so they are errors.
var unsupportedSelectors = []string{"dscp", "dscp_mask", "flowlabel", "flowlabel_mask", "tun_id"}

// ParseRules reads the output of `ip -j rule show` (family fib.V4) or
// `ip -j -6 rule show` (fib.V6).
//
// iproute2 prints an l3mdev rule ("lookup [l3mdev-table]") with no table;
// it is returned with L3MDev set and Table fib.TableUnspec. A goto rule must
// jump forward, as the kernel requires.
func ParseRules(b []byte, family fib.Family) ([]fib.Rule, error) {
	if err := checkFamily(family); err != nil {
		return nil, err
	}
	items, err := decodeArray(b, "rule")
	if err != nil {
		return nil, err
	}
	rules := make([]fib.Rule, 0, len(items))
	for _, it := range items {
		r, err := parseRule(it, family)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	return rules, nil
}

func parseRule(it *item, family fib.Family) (fib.Rule, error) {
	r := fib.Rule{Family: family, SuppressPrefixLen: -1, SuppressIfGroup: -1}
	for _, key := range unsupportedSelectors {
		if it.has(key) {
			return r, it.fail(key, errors.New("selector not supported by the model"))
		}
	}
	prio, ok, err := it.uint32("priority")
	if err != nil {
		return r, err
	}
	if !ok {
		return r, it.missing("priority")
	}
	r.Priority = prio
	r.Not = it.flag("not")
	r.L3MDev = it.flag("l3mdev")
	if r.Src, err = parseRulePrefix(it, "src", "srclen", family); err != nil {
		return r, err
	}
	if r.Dst, err = parseRulePrefix(it, "dst", "dstlen", family); err != nil {
		return r, err
	}
	if s, ok, err := it.str("tos"); err != nil {
		return r, err
	} else if ok {
		if r.TOS, err = parseDSField(s); err != nil {
			return r, it.fail("tos", err)
		}
	}
	if err := parseMark(it, &r); err != nil {
		return r, err
	}
	if r.IIF, _, err = it.str("iif"); err != nil {
		return r, err
	}
	if r.OIF, _, err = it.str("oif"); err != nil {
		return r, err
	}
	if r.UIDs, err = parseUIDRange(it); err != nil {
		return r, err
	}
	if s, ok, err := it.str("ipproto"); err != nil {
		return r, err
	} else if ok {
		if r.IPProto, err = parseIPProto(s); err != nil {
			return r, it.fail("ipproto", err)
		}
	}
	if r.SPort, err = parsePortRange(it, "sport"); err != nil {
		return r, err
	}
	if r.DPort, err = parsePortRange(it, "dport"); err != nil {
		return r, err
	}
	if s, ok, err := it.str("table"); err != nil {
		return r, err
	} else if ok {
		if r.Table, err = parseTable(s); err != nil {
			return r, it.fail("table", err)
		}
	}
	if err := parseSuppressors(it, &r); err != nil {
		return r, err
	}
	if err := parseAction(it, &r); err != nil {
		return r, err
	}
	return r, nil
}

// parseRulePrefix reads a selector printed as "src":"all", or an address
// with "srclen" when it is shorter than a host prefix.
func parseRulePrefix(it *item, key, lenKey string, family fib.Family) (netip.Prefix, error) {
	s, ok, err := it.str(key)
	if err != nil {
		return netip.Prefix{}, err
	}
	bits, hasLen, err := it.int(lenKey, 0, int64(zeroAddr(family).BitLen()))
	if err != nil {
		return netip.Prefix{}, err
	}
	if !ok || s == "all" {
		if hasLen {
			return netip.Prefix{}, it.fail(lenKey, fmt.Errorf("without an address in %q", key))
		}
		return netip.Prefix{}, nil
	}
	var a netip.Addr
	if s == "0" {
		// iproute2's text for a prefix length the kernel sent without
		// an address.
		a = zeroAddr(family)
	} else if a, err = parseAddr(s, family); err != nil {
		return netip.Prefix{}, it.fail(key, fmt.Errorf("bad address: %w", err))
	}
	if !hasLen {
		bits = int64(a.BitLen())
	}
	if bits == 0 {
		return netip.Prefix{}, nil
	}
	return netip.PrefixFrom(a, int(bits)).Masked(), nil
}

// parseMark reads "fwmark" and "fwmask". iproute2 leaves out a mask of
// 0xffffffff, which is also what the kernel uses for a mark given alone.
func parseMark(it *item, r *fib.Rule) error {
	mark, hasMark, err := it.str("fwmark")
	if err != nil {
		return err
	}
	mask, hasMask, err := it.str("fwmask")
	if err != nil {
		return err
	}
	if !hasMark {
		if hasMask {
			return it.fail("fwmask", errors.New("without fwmark"))
		}
		return nil
	}
	v, err := parseHex(mark, 32)
	if err != nil {
		return it.fail("fwmark", err)
	}
	r.Mark = uint32(v)
	r.Mask = math.MaxUint32
	if hasMask {
		if v, err = parseHex(mask, 32); err != nil {
			return it.fail("fwmask", err)
		}
		r.Mask = uint32(v)
	}
	if r.Mask == 0 && r.Mark != 0 {
		// The kernel matches every mark; fib.Rule reads this mask as
		// 0xffffffff.
		return it.fail("fwmask", errors.New("mask 0 with a non-zero mark is not supported by the model"))
	}
	return nil
}

// parseUIDRange reads "uid_start" and "uid_end".
func parseUIDRange(it *item) (*fib.UIDRange, error) {
	start, hasStart, err := it.uint32("uid_start")
	if err != nil {
		return nil, err
	}
	end, hasEnd, err := it.uint32("uid_end")
	if err != nil {
		return nil, err
	}
	switch {
	case !hasStart && !hasEnd:
		return nil, nil
	case !hasStart:
		return nil, it.missing("uid_start")
	case !hasEnd:
		return nil, it.missing("uid_end")
	case start > end:
		return nil, it.fail("uid_end", fmt.Errorf("below uid_start %d", start))
	}
	return &fib.UIDRange{Start: start, End: end}, nil
}

// parsePortRange reads a port selector, printed as "sport": 22 for a single
// port and as "sport_start" and "sport_end" for a range.
func parsePortRange(it *item, key string) (fib.PortRange, error) {
	var p fib.PortRange
	single, hasSingle, err := it.int(key, 1, math.MaxUint16)
	if err != nil {
		return p, err
	}
	start, hasStart, err := it.int(key+"_start", 1, math.MaxUint16)
	if err != nil {
		return p, err
	}
	end, hasEnd, err := it.int(key+"_end", 1, math.MaxUint16)
	if err != nil {
		return p, err
	}
	switch {
	case hasSingle && (hasStart || hasEnd):
		return p, it.fail(key, errors.New("beside a range"))
	case hasSingle:
		return fib.PortRange{Start: uint16(single), End: uint16(single)}, nil
	case !hasStart && !hasEnd:
		return p, nil
	case !hasStart:
		return p, it.missing(key + "_start")
	case !hasEnd:
		return p, it.missing(key + "_end")
	case start > end:
		return p, it.fail(key+"_end", fmt.Errorf("below %s_start %d", key, start))
	}
	return fib.PortRange{Start: uint16(start), End: uint16(end)}, nil
}

// parseSuppressors reads "suppress_prefixlen" (a number) and
// "suppress_ifgroup" (a group name or number).
func parseSuppressors(it *item, r *fib.Rule) error {
	pl, ok, err := it.int("suppress_prefixlen", math.MinInt32, math.MaxInt32)
	if err != nil {
		return err
	}
	if ok && pl >= 0 {
		// The kernel never suppresses on a negative length.
		r.SuppressPrefixLen = int(pl)
	}
	s, ok, err := it.str("suppress_ifgroup")
	if err != nil || !ok {
		return err
	}
	g, err := parseGroup(s)
	if err != nil {
		return it.fail("suppress_ifgroup", err)
	}
	if g != math.MaxUint32 {
		r.SuppressIfGroup = int(g)
	}
	return nil
}

// parseAction reads the rule's action: "goto" with the target priority,
// "nop", "action" with the name of a refusing action, or else a lookup of
// "table".
func parseAction(it *item, r *fib.Rule) error {
	isGoto, isNop, isAction := it.has("goto"), it.flag("nop"), it.has("action")
	if (isGoto && isNop) || (isGoto && isAction) || (isNop && isAction) {
		return fmt.Errorf("%s: more than one of goto, nop and action", it.name)
	}
	switch {
	case isGoto:
		target, _, err := it.uint32("goto")
		if err != nil {
			return err
		}
		if target <= r.Priority {
			return it.fail("goto", errors.New("backward goto"))
		}
		r.Action, r.Goto = fib.ActionGoto, target
	case isNop:
		r.Action = fib.ActionNop
	case isAction:
		s, _, err := it.str("action")
		if err != nil {
			return err
		}
		a, err := fib.ParseRuleAction(s)
		if err != nil {
			n, nerr := strconv.ParseUint(s, 10, 8)
			if nerr != nil {
				return it.fail("action", err)
			}
			a = fib.RuleAction(n)
		}
		switch a {
		case fib.ActionBlackhole, fib.ActionUnreachable, fib.ActionProhibit:
			r.Action = a
		default:
			return it.fail("action", errors.New("unsupported rule action"))
		}
	default:
		r.Action = fib.ActionLookup
		if r.Table == fib.TableUnspec && !r.L3MDev {
			return it.missing("table")
		}
	}
	return nil
}
