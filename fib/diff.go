package fib

import (
	"fmt"
	"net/netip"
)

// Diff compares two answers to the same query, typically the model's and
// the kernel's, field by field: error, type, table, device, gateway and
// source. It returns one line per difference, none when they agree.
//
// A multipath answer (Paths) agrees with an answer of one next hop when
// one of its paths does: the kernel picks one per flow. When none does,
// the differences are those from the first path, and a line saying that
// the other's choice is none of the next hops.
func (res *Result) Diff(other *Result) []string {
	switch {
	case len(res.Paths) > 0 && len(other.Paths) == 0:
		return diffPaths(res, other, false)
	case len(other.Paths) > 0 && len(res.Paths) == 0:
		return diffPaths(other, res, true)
	}
	return res.diff(other)
}

// diffPaths compares a multipath answer with an answer of one next hop;
// swapped keeps the caller's order of the two in the lines.
func diffPaths(multi, one *Result, swapped bool) []string {
	var first []string
	for i := range multi.Paths {
		p := multi.PathResult(i)
		var d []string
		if swapped {
			d = one.diff(&p)
		} else {
			d = p.diff(one)
		}
		if len(d) == 0 {
			return nil
		}
		if i == 0 {
			first = d
		}
	}
	return append(first, fmt.Sprintf("multipath: the single answer is none of the %d next hops", len(multi.Paths)))
}

func (res *Result) diff(other *Result) []string {
	var d []string
	add := func(field string, a, b any) {
		d = append(d, fmt.Sprintf("%s: %s != %s", field, shown(a), shown(b)))
	}
	if res.Err != other.Err {
		add("error", res.ErrName(), other.ErrName())
		return d
	}
	if res.Err != 0 {
		return nil
	}
	if res.Type != other.Type {
		add("type", res.Type, other.Type)
	}
	if res.Table != other.Table {
		add("table", res.Table, other.Table)
	}
	if res.Dev != other.Dev {
		add("dev", res.Dev, other.Dev)
	}
	if res.Gateway != other.Gateway {
		add("gateway", res.Gateway, other.Gateway)
	}
	if res.PrefSrc != other.PrefSrc {
		add("src", res.PrefSrc, other.PrefSrc)
	}
	return d
}

// shown prints a compared value, "none" for an empty one.
func shown(v any) string {
	switch x := v.(type) {
	case string:
		if x == "" {
			return "none"
		}
	case netip.Addr:
		if !x.IsValid() {
			return "none"
		}
	case TableID:
		if x == TableUnspec {
			return "none"
		}
	}
	return fmt.Sprint(v)
}
