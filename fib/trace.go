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
