package live

import (
	"fmt"
	"syscall"

	"github.com/fibguard/fibguard/fib"
	"golang.org/x/sys/unix"
)

// Rule attributes newer than golang.org/x/sys/unix (Linux 6.13 to 6.17).
const (
	fraDSCP          = 25
	fraFlowLabel     = 26
	fraFlowLabelMask = 27
	fraSPortMask     = 28
	fraDPortMask     = 29
	fraDSCPMask      = 30
)

// loadRules dumps the policy rules of both families, IPv4's first, each
// in priority order.
func (t *target) loadRules() ([]fib.Rule, error) {
	msgs, err := t.dump(unix.RTM_GETRULE, unix.AF_UNSPEC, unix.RTM_NEWRULE)
	if err != nil {
		return nil, fmt.Errorf("dump rules: %w", err)
	}
	rules := make([]fib.Rule, 0, len(msgs))
	for _, family := range []fib.Family{fib.V4, fib.V6} {
		for _, m := range msgs {
			if len(m) > 0 && fib.Family(m[0]) != family {
				continue // another family (IPMR's rules, say) or later
			}
			r, err := parseRule(m)
			if err != nil {
				return nil, fmt.Errorf("%s rule: %w", family, err)
			}
			rules = append(rules, r)
		}
	}
	return rules, nil
}

// parseRule decodes an RTM_NEWRULE message. vishvananda/netlink's
// RuleList is not used because it drops the action (fib_rule_hdr.action)
// and l3mdev.
//
// Selectors the model cannot hold (tunnel id, flow label, port and DSCP
// masks) make it fail rather than yield a rule that matches more than the
// kernel's. A DSCP selector is held as the TOS byte it matches.
func parseRule(m []byte) (fib.Rule, error) {
	hdr, attrs, err := parseMsg(m)
	if err != nil {
		return fib.Rule{}, err
	}
	r := fib.Rule{
		Family:            fib.Family(hdr.Family),
		Not:               hdr.Flags&unix.FIB_RULE_INVERT != 0,
		TOS:               hdr.Tos,
		Action:            fib.RuleAction(hdr.Type),
		Table:             fib.TableID(hdr.Table),
		SuppressPrefixLen: -1,
		SuppressIfGroup:   -1,
	}
	// unsupported names a selector the model cannot hold; the error is
	// formed after the loop, once the rule's priority is known.
	var unsupported string
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.FRA_PRIORITY:
			r.Priority, err = attrU32(a)
		case unix.FRA_SRC:
			r.Src, err = attrPrefix(a, hdr.Src_len)
		case unix.FRA_DST:
			r.Dst, err = attrPrefix(a, hdr.Dst_len)
		case unix.FRA_IIFNAME:
			r.IIF = attrString(a)
		case unix.FRA_OIFNAME:
			r.OIF = attrString(a)
		case unix.FRA_FWMARK:
			r.Mark, err = attrU32(a)
		case unix.FRA_FWMASK:
			r.Mask, err = attrU32(a)
		case unix.FRA_TABLE:
			var table uint32
			table, err = attrU32(a)
			r.Table = fib.TableID(table)
		case unix.FRA_GOTO:
			r.Goto, err = attrU32(a)
		case unix.FRA_SUPPRESS_PREFIXLEN:
			r.SuppressPrefixLen, err = attrOptional(a)
		case unix.FRA_SUPPRESS_IFGROUP:
			r.SuppressIfGroup, err = attrOptional(a)
		case unix.FRA_L3MDEV:
			var v uint8
			v, err = attrU8(a)
			r.L3MDev = v != 0
		case unix.FRA_IP_PROTO:
			r.IPProto, err = attrU8(a)
		case unix.FRA_SPORT_RANGE:
			r.SPort, err = attrPortRange(a)
		case unix.FRA_DPORT_RANGE:
			r.DPort, err = attrPortRange(a)
		case unix.FRA_UID_RANGE:
			var start, end uint32
			if start, end, err = attrU32Pair(a); err == nil {
				r.UIDs = &fib.UIDRange{Start: start, End: end}
			}
		case fraDSCP:
			var dscp uint8
			dscp, err = attrU8(a)
			r.TOS = dscp << 2
		case unix.FRA_TUN_ID:
			var id uint64
			if id, err = attrU64(a); err == nil && id != 0 {
				unsupported = "a tunnel id"
			}
		case fraFlowLabelMask:
			var mask uint32
			if mask, err = attrU32(a); err == nil && mask != 0 {
				unsupported = "a flow label"
			}
		case fraSPortMask, fraDPortMask:
			var mask uint16
			if mask, err = attrU16(a); err == nil && mask != 0xffff {
				unsupported = "a port mask"
			}
		case fraDSCPMask:
			var mask uint8
			if mask, err = attrU8(a); err == nil && mask != 0x3f {
				unsupported = "a DSCP mask"
			}
		}
		if err != nil {
			return r, err
		}
	}
	if unsupported != "" {
		return r, fmt.Errorf("rule %d matches on %s, which the model does not hold", r.Priority, unsupported)
	}
	return r, nil
}

// attrOptional decodes a u32 the kernel sets to 0xffffffff (-1) when
// unset, such as suppress_prefixlength.
func attrOptional(a syscall.NetlinkRouteAttr) (int, error) {
	v, err := attrU32(a)
	if err != nil {
		return 0, err
	}
	if v == 0xffffffff {
		return -1, nil
	}
	return int(v), nil
}
