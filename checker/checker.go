// Package checker decides whether a pod's network, as the CNI plugins before
// fibguard configured it, will work: it takes the fib model of the host
// namespace, the model of the pod namespace and the CNI result, and returns
// findings with stable codes, a one-line reason, the fib trace and a fix.
//
// The checks are documented, with examples, in docs/checks.md.
package checker

import (
	"net/netip"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/fibguard/fibguard/fib"
)

// Code identifies a check; codes are stable across releases.
type Code string

// Severity is how bad a finding is: an error rejects the pod in enforce
// mode, a warning is only reported.
type Severity string

// Severities.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Finding is one problem with a pod's network.
type Finding struct {
	Code     Code     `json:"code"`
	Severity Severity `json:"severity"`
	// Message is one line naming the address and the devices, e.g.
	// "pod IP 127.16.0.2 would be delivered to lo, not bridge cni0
	// (local 127.0.0.0/8 dev lo, table local)".
	Message string `json:"message"`
	// Trace is the fib trace of the lookup that shows the problem.
	Trace []string `json:"trace,omitempty"`
	// Fix says what to change.
	Fix string `json:"fix"`
	// Address is the pod IP the finding is about, if any; findings of the
	// same code are sorted by it.
	Address netip.Addr `json:"address,omitzero"`
}

// Line is the finding's one-line summary, "CODE message", as Events and
// logs show it.
func (f Finding) Line() string { return string(f.Code) + " " + f.Message }

// Input is what the checks look at.
type Input struct {
	// Host is the model of the host (node) namespace.
	Host *fib.Model
	// Pod is the model of the pod namespace; nil skips the pod-side checks.
	Pod *fib.Model
	// Result is the CNI result of the plugins before fibguard.
	Result *current.Result
	// Kernel, when set, answers a host-namespace lookup from the kernel
	// itself (RTM_GETROUTE); a disagreement with the model is a finding.
	Kernel func(fib.Query) (fib.Result, error)
	// ServiceCIDRs and ClusterCIDRs are the cluster's ranges, if known.
	ServiceCIDRs []netip.Prefix
	ClusterCIDRs []netip.Prefix
}

// Valid reports whether s is one of the known severities.
func (s Severity) Valid() bool {
	return s == SeverityError || s == SeverityWarning
}

// Options change which checks run and how bad their findings are. Check
// ignores an override of a code it does not know or to a severity that is
// not valid; the reader of fibguard's configuration refuses both.
type Options struct {
	// Disabled checks are not run.
	Disabled map[Code]bool
	// Severity overrides a check's default severity.
	Severity map[Code]Severity
}
