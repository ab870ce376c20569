package fib

import (
	"fmt"
	"net/netip"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Query is a route lookup, as `ip route get` takes it. With IIF set it is an
// input lookup (a packet arriving on IIF from Src); otherwise an output
// lookup (a packet the host sends).
type Query struct {
	Dst  netip.Addr
	Src  netip.Addr
	IIF  string
	OIF  string
	Mark uint32
	// TOS is the IPv4 type-of-service byte (DSCP and ECN).
	TOS     uint8
	UID     uint32
	IPProto uint8
	SPort   uint16
	DPort   uint16
	// NoTrace skips recording the trace, for bulk lookups whose answers
	// nobody reads step by step.
	NoTrace bool
}

// Result is the answer of a lookup: where the kernel sends the packet, or
// the error it refuses it with, and how it got there.
type Result struct {
	Dst netip.Addr
	// Type is the type of the resulting route (local, unicast, broadcast,
	// multicast ...); for a refused lookup, the type of the route or rule
	// that refused it, if any.
	Type RouteType
	// Table is the table the route was found in, TableUnspec if none.
	Table TableID
	// Rule is the policy rule that led to the route, if any.
	Rule *Rule
	// Route is the route that matched, if any.
	Route *Route
	// Dev is the device the packet leaves through (lo for local delivery).
	Dev     string
	Gateway netip.Addr
	// PrefSrc is the source address the kernel would pick.
	PrefSrc netip.Addr
	// Err is the error the kernel returns for this lookup, 0 if none.
	Err syscall.Errno
	// Trace lists every step of the decision.
	Trace []Step

	noTrace bool
}

// ErrName returns the errno name of the kernel's refusal ("EINVAL"), or ""
// if the lookup succeeded.
func (res *Result) ErrName() string {
	if res.Err == 0 {
		return ""
	}
	return unix.ErrnoName(res.Err)
}

// String formats the answer like `ip route get` prints it, or the error.
func (res *Result) String() string {
	if res.Err != 0 {
		return fmt.Sprintf("%s: %s (%s)", res.Dst, res.ErrName(), res.Err.Error())
	}
	var b strings.Builder
	if res.Type != TypeUnicast {
		b.WriteString(res.Type.String())
		b.WriteByte(' ')
	}
	b.WriteString(res.Dst.String())
	if res.Gateway.IsValid() {
		fmt.Fprintf(&b, " via %s", res.Gateway)
	}
	fmt.Fprintf(&b, " dev %s", res.Dev)
	if res.Table != TableUnspec && res.Table != TableMain {
		fmt.Fprintf(&b, " table %s", res.Table)
	}
	if res.PrefSrc.IsValid() {
		fmt.Fprintf(&b, " src %s", res.PrefSrc)
	}
	return b.String()
}

func (res *Result) step(s Step) {
	if res.noTrace {
		return
	}
	if res.Trace == nil {
		res.Trace = make([]Step, 0, 8)
	}
	res.Trace = append(res.Trace, s)
}

// fail records the kernel's refusal and why.
func (res *Result) fail(err syscall.Errno, note string) {
	res.Err = err
	res.step(Step{Kind: StepError, Err: err, Note: note})
}

// failLookup records a refusal that the lookup itself returned: a reject
// route or rule, or no route at all.
func (res *Result) failLookup(err syscall.Errno, fr fibResult) {
	res.Err = err
	res.step(Step{Kind: StepError, Err: err, Route: fr.route, Rule: fr.rule, Table: fr.table})
}
