// Package check is `fibguardctl check`: it predicts what the fibguard
// plugin's ADD would say about a conflist before the conflist is deployed.
// It simulates the conflist's addressing (package plan) on a what-if copy
// of a node's model, runs the same checks as the plugin (package checker)
// and prints the findings with their traces.
//
// The node is a live namespace (--netns), a snapshot (--snapshot), a
// node's `ip -j` dumps (--ip-dump), or the built-in typical node. The exit
// code is the plugin's verdict: 0 the pod would be let through (no finding
// at error level, or the conflist's fibguard entry is in warn mode), 1 the
// pod would be refused (with --strict: any finding at error level), 2 a
// usage or input error.
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
	"github.com/fibguard/fibguard/internal/cmd/cli"
	"github.com/fibguard/fibguard/internal/cmd/source"
	"github.com/fibguard/fibguard/internal/examplenode"
	"github.com/fibguard/fibguard/internal/netconf"
	"github.com/fibguard/fibguard/plan"
)

// Exit codes of `fibguardctl check`.
const (
	ExitClean    = cli.ExitOK
	ExitFindings = cli.ExitAnswer
	ExitUsage    = cli.ExitUsage
)

// ExitCode returns the exit code for an error returned by a command
// (cli.Code).
func ExitCode(err error) int { return cli.Code(err) }

// typicalNode describes the node used when no flag names one.
const typicalNode = "the built-in typical node (lo 127.0.0.1/8, eth0 10.0.0.10/24, default via 10.0.0.1)"

type flags struct {
	netns    string
	snapshot string
	ipDump   string
	output   string
	strict   bool
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
'fibguardctl snapshot' (--snapshot), the ` + "`ip -j`" + ` dumps of a node
(--ip-dump), or by default ` + typicalNode + `.

Exit codes, the plugin's verdict in the conflist's own mode: 0 the pod would
be let through (no finding at error level; or the fibguard entry's mode is
warn, which lets the pod through with a Warning Event), 1 the pod would be
refused (with --strict: any finding at error level, whatever the mode),
2 usage or input error.`,
		Example: `  fibguardctl check examples/loopback-bridge.conflist
  fibguardctl check /etc/cni/net.d/10-bridge.conflist --netns /proc/1/ns/net -o json
  fibguardctl check 10-bridge.conflist --ip-dump ./node-dumps --strict`,
		Args: cli.Args("CONFLIST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd.OutOrStdout(), &f, args[0])
		},
	}
	cmd.Flags().StringVar(&f.netns, "netns", "", "model the node from this live network namespace: a name under /var/run/netns or a path")
	cmd.Flags().StringVar(&f.snapshot, "snapshot", "", "model the node saved in this snapshot file")
	cmd.Flags().StringVar(&f.ipDump, "ip-dump", "", "model the node from the ip -j dumps in `DIR`: link.json, addr.json, route.json, route6.json, rule.json, rule6.json (see docs/fibguardctl.md)")
	cli.AddOutput(cmd, &f.output)
	cmd.Flags().BoolVar(&f.strict, "strict", false, "exit 1 on any finding at error level, also when the conflist's fibguard entry is in warn mode")
	return cmd
}

// usage marks an error as a usage or input error.
func usage(err error) error { return &cli.ExitError{Code: ExitUsage, Err: err} }

// node loads the node's model and says which one it is.
func (f *flags) node() (*fib.Model, string, error) {
	src := source.Flags{Netns: f.netns, Snapshot: f.snapshot, IPDump: f.ipDump}
	if err := src.Validate(); err != nil {
		return nil, "", err
	}
	var desc string
	switch {
	case f.netns != "":
		desc = "network namespace " + f.netns
	case f.snapshot != "":
		desc = "snapshot " + f.snapshot
	case f.ipDump != "":
		desc = "the ip -j dumps in " + f.ipDump
	default:
		return examplenode.Typical(), typicalNode, nil
	}
	m, err := src.Load()
	if err != nil {
		return nil, "", err
	}
	return m, desc, nil
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
	format, err := cli.ParseFormat(f.output)
	if err != nil {
		return usage(err)
	}
	r, err := f.simulate(path)
	if err != nil {
		return usage(err)
	}
	r.findings = checker.Check(checker.Input{
		Host:         r.plan.Host,
		Pod:          r.plan.Pod,
		Result:       r.plan.Result,
		ServiceCIDRs: r.guard.serviceCIDRs,
		ClusterCIDRs: r.guard.clusterCIDRs,
	}, r.guard.options)
	if err := write(w, format, r); err != nil {
		return usage(fmt.Errorf("write output: %w", err))
	}
	return r.exit(f.strict)
}

// write prints the report in the format asked for.
func write(w io.Writer, format cli.Format, r *report) error {
	if format == cli.Text {
		return writeText(w, r)
	}
	doc, err := r.document()
	if err != nil {
		return err
	}
	return cli.Encode(w, format, doc)
}

// simulate reads the conflist and the node and simulates the conflist's
// plugins on the node.
func (f *flags) simulate(path string) (*report, error) {
	list, err := readConflist(path)
	if err != nil {
		return nil, err
	}
	g, err := findGuard(list)
	if err != nil {
		return nil, fmt.Errorf("conflist %s: %w", path, err)
	}
	node, desc, err := f.node()
	if err != nil {
		return nil, err
	}
	p, err := plan.Simulate(node, list, plan.Options{})
	if errors.Is(err, plan.ErrNoInterfacePlugin) {
		return nil, fmt.Errorf("conflist %s: nothing to simulate: %w; its plugins: %s", path, err, pluginTypes(list))
	}
	if err != nil {
		return nil, fmt.Errorf("conflist %s: %w", path, err)
	}
	if err := g.order(p); err != nil {
		return nil, fmt.Errorf("conflist %s: %w", path, err)
	}
	return &report{path: path, node: desc, plan: p, guard: g}, nil
}

// warn reports whether the plugin would let the pod through whatever its
// findings: fibguard's entry is in warn mode.
func (r *report) warn() bool { return r.guard.mode == netconf.ModeWarn }

// exit is the verdict as an exit status: findings at error level refuse
// the pod in enforce mode (exit 1); in warn mode the pod goes through
// (exit 0) unless strict.
func (r *report) exit(strict bool) error {
	n := r.errors()
	switch {
	case n == 0:
		return nil
	case strict && r.warn():
		return cli.Failed(fmt.Errorf("%s: %s at error level (--strict; in its warn mode fibguard would let the pod through)", r.path, plural(n, "finding")))
	case strict || !r.warn():
		return cli.Failed(fmt.Errorf("%s: %s at error level", r.path, plural(n, "finding")))
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
	if err := cli.JSONSyntax(b); err != nil {
		return nil, fmt.Errorf("conflist %s: %w", path, err)
	}
	list, err := libcni.ConfListFromBytes(b)
	if err != nil {
		return nil, cli.Reword(err, "conflist %s: %s", path, strings.TrimPrefix(err.Error(), "error parsing configuration list: "))
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
