// Package check is `fibguardctl check`: it predicts what the fibguard
// plugin's ADD would say about a conflist before the conflist is deployed.
// It simulates the conflist's addressing (package plan) on a what-if copy
// of a node's model, runs the same checks as the plugin (package checker)
// and prints the findings with their traces.
//
// The node is a live namespace (--netns), a snapshot (--snapshot), or the
// built-in typical node. The exit code says how it went: 0 no finding at
// error level (warnings allowed), 1 findings at error level, 2 a usage or
// input error.
package check

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/spf13/cobra"

	"github.com/fibguard/fibguard/checker"
	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/internal/cmd/source"
	"github.com/fibguard/fibguard/internal/examplenode"
	"github.com/fibguard/fibguard/plan"
)

// Exit codes of `fibguardctl check`.
const (
	ExitClean    = 0
	ExitFindings = 1
	ExitUsage    = 2
)

// ExitError is an error that carries the exit code of the process; main
// maps it, every other error is a usage or input error (ExitUsage).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }

func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode returns the exit code for an error returned by a command: the
// code of an ExitError, ExitClean for nil, ExitUsage otherwise.
func ExitCode(err error) int {
	if err == nil {
		return ExitClean
	}
	var e *ExitError
	if errors.As(err, &e) {
		return e.Code
	}
	return ExitUsage
}

// typicalNode describes the node used when no flag names one.
const typicalNode = "the built-in typical node (lo 127.0.0.1/8, eth0 10.0.0.10/24, default via 10.0.0.1)"

type flags struct {
	netns    string
	snapshot string
	output   string
}

// NewCommand returns `check`.
func NewCommand() *cobra.Command {
	var f flags
	cmd := &cobra.Command{
		Use:   "check CONFLIST",
		Short: "Predict what the fibguard plugin would say about a conflist before it is deployed",
		Long: `Simulate what the conflist's bridge or ptp plugin with host-local or static
IPAM would configure for the first pod on a node, on a what-if copy of the
node's routing model, run fibguard's checks on the result and print the
findings with their traces. Other plugins (portmap, tuning, fibguard itself)
are listed as skipped. The pod is the network's first on the node: host-local
hands out the first address of its ranges.

The node is a live namespace (--netns), a snapshot saved by
'fibguardctl snapshot' (--snapshot), or by default ` + typicalNode + `.

Exit codes: 0 no finding at error level (warnings allowed), 1 findings at
error level (fibguard in enforce mode would refuse the pod), 2 usage or
input error.`,
		Example: `  fibguardctl check examples/loopback-bridge.conflist
  fibguardctl check /etc/cni/net.d/10-bridge.conflist --netns /proc/1/ns/net -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd.OutOrStdout(), &f, args[0])
		},
	}
	cmd.Flags().StringVar(&f.netns, "netns", "", "model the node from this live network namespace: a name under /var/run/netns or a path")
	cmd.Flags().StringVar(&f.snapshot, "snapshot", "", "model the node saved in this snapshot file")
	cmd.Flags().StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	return cmd
}

// usage wraps an error as a usage or input error.
func usage(err error) error { return &ExitError{Code: ExitUsage, Err: err} }

// node loads the node's model and says which one it is.
func (f *flags) node() (*fib.Model, string, error) {
	if f.netns != "" && f.snapshot != "" {
		return nil, "", errors.New("--netns and --snapshot exclude each other")
	}
	if f.netns == "" && f.snapshot == "" {
		return examplenode.Typical(), typicalNode, nil
	}
	src := source.Flags{Netns: f.netns, Snapshot: f.snapshot}
	m, err := src.Load()
	if err != nil {
		return nil, "", err
	}
	if f.netns != "" {
		return m, "network namespace " + f.netns, nil
	}
	return m, "snapshot " + f.snapshot, nil
}

// report is everything one check produced, for either output format.
type report struct {
	path     string
	node     string
	plan     *plan.Plan
	guard    guard
	findings []checker.Finding
}

func (r *report) errors() int {
	n := 0
	for _, f := range r.findings {
		if f.Severity == checker.SeverityError {
			n++
		}
	}
	return n
}

func run(w io.Writer, f *flags, path string) error {
	if f.output != "text" && f.output != "json" {
		return usage(fmt.Errorf("-o %q: want text or json", f.output))
	}
	list, err := readConflist(path)
	if err != nil {
		return usage(err)
	}
	g, err := findGuard(list)
	if err != nil {
		return usage(fmt.Errorf("%s: %w", path, err))
	}
	node, desc, err := f.node()
	if err != nil {
		return usage(err)
	}
	p, err := plan.Simulate(node, list, plan.Options{})
	if errors.Is(err, plan.ErrNoInterfacePlugin) {
		return usage(fmt.Errorf("%s: nothing to simulate: %w; its plugins: %s", path, err, pluginTypes(list)))
	}
	if err != nil {
		return usage(fmt.Errorf("%s: %w", path, err))
	}
	if err := g.order(p); err != nil {
		return usage(fmt.Errorf("%s: %w", path, err))
	}
	r := &report{path: path, node: desc, plan: p, guard: g}
	r.findings = checker.Check(checker.Input{
		Host:         p.Host,
		Pod:          p.Pod,
		Result:       p.Result,
		ServiceCIDRs: g.serviceCIDRs,
		ClusterCIDRs: g.clusterCIDRs,
	}, g.options)
	if f.output == "json" {
		err = writeJSON(w, r)
	} else {
		err = writeText(w, r)
	}
	if err != nil {
		return usage(fmt.Errorf("write output: %w", err))
	}
	if n := r.errors(); n > 0 {
		return &ExitError{Code: ExitFindings, Err: fmt.Errorf("%s: %s at error level", path, plural(n, "finding"))}
	}
	return nil
}

// MaxConflistSize bounds the conflist `check` reads: the size up to which
// the installer reads a node's conflists (install.MaxConfigFile) and the
// runtime may hand the plugin its configuration (plugin.MaxConfigSize). A
// real conflist is a few KiB.
const MaxConflistSize = 1 << 20

// readConflist reads and parses the conflist at path: a regular file of at
// most MaxConflistSize (source.ReadFile), so that a FIFO, a device or an
// endless file is an error naming it, not a hang.
func readConflist(path string) (*libcni.NetworkConfigList, error) {
	b, err := source.ReadFile("conflist", path, MaxConflistSize)
	if err != nil {
		return nil, err
	}
	list, err := libcni.ConfListFromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return list, nil
}

// pluginTypes lists the types of a conflist's plugins.
func pluginTypes(list *libcni.NetworkConfigList) string {
	types := make([]string, len(list.Plugins))
	for i, p := range list.Plugins {
		types[i] = p.Network.Type
	}
	return strings.Join(types, ", ")
}

// plural writes "1 finding", "2 findings".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
