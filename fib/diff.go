package fib

import "fmt"

// Diff compares two answers to the same query, typically the model's and
// the kernel's, field by field: error, type, table, device, gateway and
// source. It returns one line per difference, none when they agree. Fields
// the kernel does not report for input lookups (the source) are compared
// only when both answers carry them.
func (r *Result) Diff(other *Result) []string {
	var d []string
	add := func(field string, a, b any) {
		d = append(d, fmt.Sprintf("%s: %v != %v", field, a, b))
	}
	if r.Err != other.Err {
		add("error", r.ErrName(), other.ErrName())
		return d
	}
	if r.Err != 0 {
		return nil
	}
	if r.Type != other.Type {
		add("type", r.Type, other.Type)
	}
	if r.Table != other.Table {
		add("table", r.Table, other.Table)
	}
	if r.Dev != other.Dev {
		add("dev", r.Dev, other.Dev)
	}
	if r.Gateway != other.Gateway {
		add("gateway", r.Gateway, other.Gateway)
	}
	if r.PrefSrc != other.PrefSrc && r.PrefSrc.IsValid() && other.PrefSrc.IsValid() || r.PrefSrc.IsValid() != other.PrefSrc.IsValid() {
		add("src", r.PrefSrc, other.PrefSrc)
	}
	return d
}
