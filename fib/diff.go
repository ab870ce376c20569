package fib

import "fmt"

// Diff compares two answers to the same query, typically the model's and
// the kernel's, field by field: error, type, table, device, gateway and
// source. It returns one line per difference, none when they agree.
func (res *Result) Diff(other *Result) []string {
	var d []string
	add := func(field string, a, b any) {
		d = append(d, fmt.Sprintf("%s: %v != %v", field, a, b))
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
