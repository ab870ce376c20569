package fib

import (
	"fmt"
	"net/netip"
)

// Diff compares two answers to the same query, typically the model's and
// the kernel's, field by field: error, type, table, device, gateway and
// source. It returns one line per difference, none when they agree.
func (res *Result) Diff(other *Result) []string {
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
