package fib

import (
	"fmt"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// StepKind says what a trace step records.
type StepKind uint8

// Kinds of trace steps.
const (
	// StepRule: a policy rule matched and its action was taken.
	StepRule StepKind = iota + 1
	// StepMerged: IPv4 local and main are one trie; rules were not consulted.
	StepMerged
	// StepNoRoute: a table had no usable route for the destination.
	StepNoRoute
	// StepRoute: a route matched.
	StepRoute
	// StepThrow: a throw route sent the lookup back to rule evaluation.
	StepThrow
	// StepSuppress: a rule's suppressor rejected the table's answer.
	StepSuppress
	// StepDevice: why the packet leaves through the device it does.
	StepDevice
	// StepSource: how the source address was chosen.
	StepSource
	// StepError: why the kernel refuses the lookup.
	StepError
)

// Step is one step of a lookup's decision. Its String form is the line a
// person reads; the fields carry the same facts for programs.
type Step struct {
	Kind  StepKind
	Rule  *Rule
	Table TableID
	Route *Route
	Dev   string
	Addr  netip.Addr
	Err   syscall.Errno
	// Note is a fixed explanation of the step.
	Note string
}

// String renders the step for people.
func (s Step) String() string {
	switch s.Kind {
	case StepRule:
		return fmt.Sprintf("rule %s: matched", s.Rule)
	case StepMerged:
		return "tables local and main are merged (no custom IPv4 rule was ever added): one longest-prefix match over both"
	case StepNoRoute:
		return fmt.Sprintf("table %s: no usable route", s.Table)
	case StepRoute:
		return fmt.Sprintf("table %s: matched %s", s.Table, s.Route)
	case StepThrow:
		return fmt.Sprintf("table %s: %s returns to rule evaluation", s.Table, s.Route)
	case StepSuppress:
		return fmt.Sprintf("rule %s: result suppressed (%s)", s.Rule, s.Note)
	case StepDevice:
		if s.Dev == "" {
			return s.Note
		}
		return fmt.Sprintf("device %s: %s", s.Dev, s.Note)
	case StepSource:
		return fmt.Sprintf("source %s: %s", s.Addr, s.Note)
	case StepError:
		note := s.Note
		if note == "" {
			note = errNote(fibResult{route: s.Route, rule: s.Rule, table: s.Table}, s.Err)
		}
		return fmt.Sprintf("error %s: %s", unix.ErrnoName(s.Err), note)
	}
	return s.Note
}

// MarshalText renders the step for JSON output.
func (s Step) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// The steps both the general path and the fast path record, written once.
// Each checks noTrace before making its Step, which a lookup without a
// trace then never builds.

// stepRule records a policy rule that matched and whose action was taken.
func (res *Result) stepRule(r *Rule) {
	if !res.noTrace {
		res.step(Step{Kind: StepRule, Rule: r})
	}
}

// stepMerged records that IPv4 local and main are one trie.
func (res *Result) stepMerged() {
	if !res.noTrace {
		res.step(Step{Kind: StepMerged})
	}
}

// stepNoRoute records a table without a usable route.
func (res *Result) stepNoRoute(id TableID) {
	if !res.noTrace {
		res.step(Step{Kind: StepNoRoute, Table: id})
	}
}

// stepRoute records the route a table answered with.
func (res *Result) stepRoute(id TableID, r *Route) {
	if !res.noTrace {
		res.step(Step{Kind: StepRoute, Table: id, Route: r})
	}
}

// stepLocal records that a local route delivers through lo.
func (res *Result) stepLocal(lo *device) {
	if !res.noTrace {
		res.step(Step{Kind: StepDevice, Dev: lo.link.Name, Note: "a local route is delivered through the loopback device, whatever device the route names"})
	}
}

// stepSource4 records the source an IPv4 route gave (routeSource4), if
// any: its preferred source (pref) or inet_select_addr's.
func (res *Result) stepSource4(src netip.Addr, pref bool) {
	if res.noTrace || !src.IsValid() {
		return
	}
	if pref {
		res.step(Step{Kind: StepSource, Addr: src, Note: "the route's preferred source"})
		return
	}
	res.step(Step{Kind: StepSource, Addr: src, Note: "first primary address of suitable scope, preferring the route's device"})
}

// stepSource6 records the source of an IPv6 answer: the route's preferred
// one (pref) or RFC 6724's choice.
func (res *Result) stepSource6(src netip.Addr, pref bool) {
	if res.noTrace {
		return
	}
	if pref {
		res.step(Step{Kind: StepSource, Addr: src, Note: "the route's preferred source"})
		return
	}
	res.step(Step{Kind: StepSource, Addr: src, Note: "RFC 6724 source address selection"})
}
