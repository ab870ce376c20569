package fib

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// MarshalText writes the route as one canonical line in iproute2's words,
// the form snapshots store:
//
//	TYPE DST [from SRC] [tos 0xNN] [nhid N] [via GW] [dev DEV] table TABLE
//	[proto PROTO] scope SCOPE [src PREFSRC] [metric N] [onlink] [linkdown]
//	[dead] {nexthop [via GW] dev DEV weight W [onlink] [linkdown] [dead]}
//
// DST always carries its prefix length, so the family is never ambiguous.
func (r Route) MarshalText() ([]byte, error) {
	b := make([]byte, 0, 96)
	b = append(b, r.Type.String()...)
	b = append(b, ' ')
	b = r.Dst.AppendTo(b)
	if r.Src.IsValid() {
		b = append(b, " from "...)
		b = r.Src.AppendTo(b)
	}
	if r.TOS != 0 {
		b = append(b, " tos 0x"...)
		b = strconv.AppendUint(b, uint64(r.TOS), 16)
	}
	if r.NHID != 0 {
		b = append(b, " nhid "...)
		b = strconv.AppendUint(b, uint64(r.NHID), 10)
	}
	single := len(r.NextHops) == 1
	if single {
		b = appendNextHop(b, r.NextHops[0], false)
	}
	b = append(b, " table "...)
	b = append(b, r.Table.String()...)
	if r.Protocol != "" {
		b = append(b, " proto "...)
		b = append(b, r.Protocol...)
	}
	b = append(b, " scope "...)
	b = append(b, r.Scope.String()...)
	if r.PrefSrc.IsValid() {
		b = append(b, " src "...)
		b = r.PrefSrc.AppendTo(b)
	}
	if r.Metric != 0 {
		b = append(b, " metric "...)
		b = strconv.AppendUint(b, uint64(r.Metric), 10)
	}
	if single {
		b = appendNextHopFlags(b, r.NextHops[0])
	}
	if len(r.NextHops) > 1 {
		for _, nh := range r.NextHops {
			b = append(b, " nexthop"...)
			b = appendNextHop(b, nh, true)
			b = appendNextHopFlags(b, nh)
		}
	}
	return b, nil
}

func appendNextHop(b []byte, nh NextHop, weight bool) []byte {
	if nh.Gateway.IsValid() {
		b = append(b, " via "...)
		b = nh.Gateway.AppendTo(b)
	}
	if nh.Link != "" {
		b = append(b, " dev "...)
		b = append(b, nh.Link...)
	}
	if weight {
		b = append(b, " weight "...)
		b = strconv.AppendInt(b, int64(max(nh.Weight, 1)), 10)
	}
	return b
}

func appendNextHopFlags(b []byte, nh NextHop) []byte {
	if nh.OnLink {
		b = append(b, " onlink"...)
	}
	if nh.LinkDown {
		b = append(b, " linkdown"...)
	}
	if nh.Dead {
		b = append(b, " dead"...)
	}
	return b
}

// UnmarshalText reads a line written by MarshalText. Every word must be
// understood: an unknown keyword, a bad prefix or a missing value is an
// error naming it.
func (r *Route) UnmarshalText(text []byte) error {
	s := string(text)
	if err := r.parse(s, nil); err != nil {
		return fmt.Errorf("route %q: %w", s, err)
	}
	return nil
}

// ParseRoute reads a route line in the form MarshalText writes.
func ParseRoute(s string) (Route, error) {
	var r Route
	err := r.UnmarshalText([]byte(s))
	return r, err
}

// lineParser holds what parsing the many route lines of one table shares:
// interned device names and protocols, so a large table holds each name
// once rather than a piece of every line, and a slab the first next hop of
// each route is taken from, so a million routes are not a million
// allocations. A nil lineParser parses one line on its own.
type lineParser struct {
	names map[string]string
	hops  []NextHop
}

func newLineParser() *lineParser { return &lineParser{names: make(map[string]string)} }

func (p *lineParser) intern(s string) string {
	if p == nil {
		return strings.Clone(s)
	}
	if v, ok := p.names[s]; ok {
		return v
	}
	v := strings.Clone(s)
	p.names[v] = v
	return v
}

// addHop appends nh to the route's next hops and returns it; a first next
// hop comes from the slab, in a slice of capacity one so that appending to
// it copies.
func (p *lineParser) addHop(r *Route, nh NextHop) *NextHop {
	if p == nil || len(r.NextHops) > 0 {
		r.NextHops = append(r.NextHops, nh)
		return &r.NextHops[len(r.NextHops)-1]
	}
	if len(p.hops) == cap(p.hops) {
		p.hops = make([]NextHop, 0, 1024)
	}
	p.hops = append(p.hops, nh)
	n := len(p.hops)
	r.NextHops = p.hops[n-1 : n : n]
	return &r.NextHops[0]
}

func (r *Route) parse(s string, w *lineParser) error {
	*r = Route{}
	tok := tokens{rest: s}
	typ, ok := tok.next()
	if !ok {
		return fmt.Errorf("empty")
	}
	var err error
	if r.Type, err = ParseRouteType(typ); err != nil {
		return err
	}
	dst, ok := tok.next()
	if !ok {
		return fmt.Errorf("no destination")
	}
	if r.Dst, err = netip.ParsePrefix(dst); err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	if r.Dst != r.Dst.Masked() {
		return fmt.Errorf("destination %s has host bits set", r.Dst)
	}
	r.Family = FamilyOf(r.Dst.Addr())
	var nh *NextHop // the next hop words apply to
	haveTable, haveScope := false, false
	for {
		key, ok := tok.next()
		if !ok {
			break
		}
		switch key {
		case "onlink", "linkdown", "dead":
			if nh == nil {
				if len(r.NextHops) != 0 {
					return fmt.Errorf("%s after nexthops", key)
				}
				nh = w.addHop(r, NextHop{})
			}
			switch key {
			case "onlink":
				nh.OnLink = true
			case "linkdown":
				nh.LinkDown = true
			default:
				nh.Dead = true
			}
			continue
		case "nexthop":
			if len(r.NextHops) > 0 && r.NextHops[0].Weight == 0 {
				return fmt.Errorf("nexthop after a single next hop")
			}
			nh = w.addHop(r, NextHop{Weight: 1})
			continue
		}
		val, ok := tok.next()
		if !ok {
			return fmt.Errorf("%s without a value", key)
		}
		switch key {
		case "from":
			if r.Src, err = netip.ParsePrefix(val); err != nil {
				return fmt.Errorf("from: %w", err)
			}
		case "tos":
			v, err := strconv.ParseUint(strings.TrimPrefix(val, "0x"), 16, 8)
			if err != nil {
				return fmt.Errorf("tos %q: %w", val, err)
			}
			r.TOS = uint8(v)
		case "nhid":
			v, err := strconv.ParseUint(val, 10, 32)
			if err != nil || v == 0 {
				return fmt.Errorf("nhid %q", val)
			}
			r.NHID = uint32(v)
		case "via", "dev", "weight":
			if nh == nil {
				nh = w.addHop(r, NextHop{})
			}
			switch key {
			case "via":
				if nh.Gateway, err = netip.ParseAddr(val); err != nil {
					return fmt.Errorf("via: %w", err)
				}
			case "dev":
				nh.Link = w.intern(val)
			default:
				w, err := strconv.Atoi(val)
				if err != nil || w < 1 {
					return fmt.Errorf("weight %q", val)
				}
				nh.Weight = w
			}
		case "table":
			if r.Table, err = ParseTableID(val); err != nil {
				return err
			}
			haveTable = true
		case "proto":
			r.Protocol = w.intern(val)
		case "scope":
			if r.Scope, err = ParseScope(val); err != nil {
				return err
			}
			haveScope = true
		case "src":
			if r.PrefSrc, err = netip.ParseAddr(val); err != nil {
				return fmt.Errorf("src: %w", err)
			}
		case "metric":
			v, err := strconv.ParseUint(val, 10, 32)
			if err != nil {
				return fmt.Errorf("metric %q: %w", val, err)
			}
			r.Metric = uint32(v)
		default:
			return fmt.Errorf("unknown keyword %q", key)
		}
	}
	if !haveTable || !haveScope {
		return fmt.Errorf("table and scope are required")
	}
	if len(r.NextHops) > 1 || (len(r.NextHops) == 1 && r.NextHops[0].Weight > 0) {
		for i, nh := range r.NextHops {
			if nh.Link == "" {
				return fmt.Errorf("nexthop %d without a device", i+1)
			}
		}
	}
	if len(r.NextHops) == 1 {
		r.NextHops[0].Weight = 0
	}
	return nil
}

// tokens splits a line at spaces without allocating.
type tokens struct{ rest string }

func (t *tokens) next() (string, bool) {
	t.rest = strings.TrimLeft(t.rest, " ")
	if t.rest == "" {
		return "", false
	}
	word, rest, _ := strings.Cut(t.rest, " ")
	t.rest = rest
	return word, true
}
