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
	// Paths is set when the route is a multipath one (several `nexthop`s,
	// or a nexthop group) and more than one of its next hops is usable:
	// the kernel picks one of them per flow, by a hash of the flow's
	// addresses, so the model answers with all of them, in the route's
	// order, each with the device, gateway, source and error the packet
	// gets through it. Dev, Gateway, PrefSrc and Err are those of the
	// first; the trace follows the first. Nil for a single next hop.
	//
	// Paths also holds the devices a multicast or broadcast packet may
	// leave through when its given source is an address of several
	// devices: the kernel takes the device the address was assigned to
	// last, which no dump shows.
	Paths []Path
	// Trace lists every step of the decision.
	Trace []Step

	noTrace bool
	// byOwner: Paths are the owners of the source, not next hops.
	byOwner bool
}

// Path is one next hop of a multipath route that the kernel may choose
// for the flow, and the answer the packet gets through it.
type Path struct {
	Dev     string
	Gateway netip.Addr
	// PrefSrc is the source address the kernel reports through this next
	// hop (the same rules as Result.PrefSrc).
	PrefSrc netip.Addr
	// Weight is the next hop's weight in the route (1 if unset).
	Weight int
	// Err is the kernel's refusal through this next hop, 0 if none.
	Err syscall.Errno
}

// String formats the next hop as `ip route get` prints an answer's.
func (p Path) String() string {
	var b strings.Builder
	if p.Gateway.IsValid() {
		fmt.Fprintf(&b, "via %s ", p.Gateway)
	}
	fmt.Fprintf(&b, "dev %s", p.Dev)
	if p.PrefSrc.IsValid() {
		fmt.Fprintf(&b, " src %s", p.PrefSrc)
	}
	if p.Weight > 1 {
		fmt.Fprintf(&b, " weight %d", p.Weight)
	}
	if p.Err != 0 {
		fmt.Fprintf(&b, " (%s)", unix.ErrnoName(p.Err))
	}
	return b.String()
}

// PathResult returns the answer the lookup gives when the kernel picks
// path i of a multipath answer: the result with that path's device,
// gateway, source and error, without Paths and trace.
func (res *Result) PathResult(i int) Result {
	p := res.Paths[i]
	r := *res
	r.Paths, r.Trace = nil, nil
	r.Dev, r.Gateway, r.PrefSrc, r.Err = p.Dev, p.Gateway, p.PrefSrc, p.Err
	return r
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
// A multipath answer is followed by the next hops the kernel chooses
// among: "(multipath, one per flow: via A dev X src S | via B dev Y src T)";
// one from a source on several devices by those devices: "(through the
// device the source was assigned to last: dev X | dev Y)".
func (res *Result) String() string {
	s := res.answerString()
	if len(res.Paths) > 1 {
		hops := make([]string, len(res.Paths))
		for i, p := range res.Paths {
			hops[i] = p.String()
		}
		if res.byOwner {
			s += " (through the device the source was assigned to last: " + strings.Join(hops, " | ") + ")"
		} else {
			s += " (multipath, one per flow: " + strings.Join(hops, " | ") + ")"
		}
	}
	return s
}

func (res *Result) answerString() string {
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
