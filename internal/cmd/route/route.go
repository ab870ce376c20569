// Package route is `fibguardctl route get`: the model's answer to where a
// packet goes, with the trace of how it got there.
package route

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/fib/live"
	"github.com/fibguard/fibguard/internal/cmd/cli"
	"github.com/fibguard/fibguard/internal/cmd/source"
)

type flags struct {
	source source.Flags
	from   string
	iif    string
	oif    string
	mark   uint32
	tos    uint8
	output string
	kernel bool
}

// NewCommand returns `route` with its `get` subcommand.
func NewCommand() *cobra.Command {
	cmd := cli.Group("route", "Route lookups on the model")
	cmd.AddCommand(newGet())
	return cmd
}

func newGet() *cobra.Command {
	var f flags
	cmd := &cobra.Command{
		Use:   "get DST",
		Short: "Answer like `ip route get`, from the model, with a trace",
		Long: `Answer where the kernel would send a packet to DST, computed from the model
(never by asking the kernel), then print every step that decided it.
With --kernel, also ask the kernel (RTM_GETROUTE) and say whether both agree.

Exit codes, as ip route get: 0 the answer is a route, 1 the answer is an
error (the kernel would refuse the lookup: ENETUNREACH, or a blackhole,
unreachable or prohibit route or rule) or, with --kernel, the model and the
kernel disagree; 2 a usage or input error.`,
		Example: `  fibguardctl route get --example 127.16.0.5
  fibguardctl route get --netns pod1 --kernel 10.96.0.1
  fibguardctl route get --ip-dump ./node-dumps -o yaml 10.244.1.7`,
		Args: cli.Args("DST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd.OutOrStdout(), &f, args[0])
		},
	}
	f.source.Add(cmd)
	cmd.Flags().StringVar(&f.from, "from", "", "source address")
	cmd.Flags().StringVar(&f.iif, "iif", "", "input device: look up a packet arriving on it (needs --from for IPv4)")
	cmd.Flags().StringVar(&f.oif, "oif", "", "output device")
	cmd.Flags().Uint32Var(&f.mark, "mark", 0, "firewall mark")
	cmd.Flags().Uint8Var(&f.tos, "tos", 0, "IPv4 TOS byte")
	cli.AddOutput(cmd, &f.output)
	cmd.Flags().BoolVar(&f.kernel, "kernel", false, "also ask the kernel and compare (live namespaces only)")
	return cmd
}

func (f *flags) query(dst string) (fib.Query, error) {
	q := fib.Query{IIF: f.iif, OIF: f.oif, Mark: f.mark, TOS: f.tos}
	var err error
	if q.Dst, err = cli.ParseAddr("destination", dst); err != nil {
		return q, err
	}
	if f.from != "" {
		if q.Src, err = cli.ParseAddr("--from", f.from); err != nil {
			return q, err
		}
	}
	return q, nil
}

// validate checks the flags before anything is read.
func (f *flags) validate() (cli.Format, error) {
	format, err := cli.ParseFormat(f.output)
	if err != nil {
		return "", err
	}
	if err := f.source.Validate(); err != nil {
		return "", err
	}
	if f.kernel && !f.source.Live() {
		return "", errors.New("--kernel asks the kernel of a live namespace: it does not go with --snapshot, --ip-dump or --example")
	}
	return format, nil
}

func run(w io.Writer, f *flags, dst string) error {
	format, err := f.validate()
	if err != nil {
		return err
	}
	q, err := f.query(dst)
	if err != nil {
		return err
	}
	m, err := f.source.Load()
	if err != nil {
		return err
	}
	res, err := m.Lookup(q)
	if err != nil {
		return cli.Reword(err, "%s", strings.TrimPrefix(err.Error(), "lookup "))
	}
	var kres *fib.Result
	if f.kernel {
		k, err := live.RouteGet(f.source.Netns, q)
		if err != nil {
			return fmt.Errorf("ask the kernel: %w", err)
		}
		kres = &k
	}
	if err := write(w, format, &res, kres); err != nil {
		return fmt.Errorf("write the answer: %w", err)
	}
	return verdict(&res, kres)
}

// write prints the answer in the format asked for.
func write(w io.Writer, format cli.Format, res, kres *fib.Result) error {
	if format != cli.Text {
		return cli.Encode(w, format, document(res, kres))
	}
	_, err := io.WriteString(w, text(res, kres))
	return err
}

// verdict is the exit status of an answer that was printed: a
// disagreement with the kernel, or a refusal, is exit 1 (as `ip route get`
// fails when the kernel refuses), with a line that says which.
func verdict(res, kres *fib.Result) error {
	if kres != nil {
		if d := res.Diff(kres); len(d) > 0 {
			return cli.Failed(fmt.Errorf("%s: the model and the kernel disagree (%s)", res.Dst, strings.Join(d, "; ")))
		}
	}
	if res.Err != 0 {
		return cli.Failed(fmt.Errorf("%s: the answer is an error: the kernel refuses the lookup with %s", res.Dst, res.ErrName()))
	}
	return nil
}

// answer is the JSON form of a result.
type answer struct {
	Dst     string `json:"dst"`
	Type    string `json:"type"`
	Table   string `json:"table"`
	Dev     string `json:"dev"`
	Gateway string `json:"gateway"`
	PrefSrc string `json:"prefsrc"`
	Error   string `json:"error"`
	Rule    string `json:"rule,omitempty"`
	Route   string `json:"route,omitempty"`
	// Paths are a multipath route's usable next hops, of which the kernel
	// picks one per flow; dev, gateway and prefsrc are the first's.
	Paths []path   `json:"paths,omitempty"`
	Trace []string `json:"trace,omitempty"`
}

// path is the JSON form of one next hop of a multipath answer.
type path struct {
	Dev     string `json:"dev"`
	Gateway string `json:"gateway,omitempty"`
	PrefSrc string `json:"prefsrc,omitempty"`
	Weight  int    `json:"weight"`
	Error   string `json:"error,omitempty"`
}

func toPaths(ps []fib.Path) []path {
	var out []path
	for _, p := range ps {
		j := path{Dev: p.Dev, Weight: p.Weight}
		if p.Gateway.IsValid() {
			j.Gateway = p.Gateway.String()
		}
		if p.PrefSrc.IsValid() {
			j.PrefSrc = p.PrefSrc.String()
		}
		if p.Err != 0 {
			j.Error = unix.ErrnoName(p.Err)
		}
		out = append(out, j)
	}
	return out
}

func toAnswer(r *fib.Result) answer {
	a := answer{Dst: r.Dst.String(), Error: r.ErrName()}
	for _, s := range r.Trace {
		a.Trace = append(a.Trace, cli.Untab(s.String()))
	}
	// A refused lookup has no type, table or device; rule and route still
	// say what led to the refusal.
	if r.Err == 0 {
		a.Type, a.Dev = r.Type.String(), r.Dev
		if r.Table != fib.TableUnspec {
			a.Table = r.Table.String()
		}
		if r.Gateway.IsValid() {
			a.Gateway = r.Gateway.String()
		}
		if r.PrefSrc.IsValid() {
			a.PrefSrc = r.PrefSrc.String()
		}
		a.Paths = toPaths(r.Paths)
	}
	if r.Rule != nil {
		a.Rule = cli.Untab(r.Rule.String())
	}
	if r.Route != nil {
		a.Route = cli.Untab(r.Route.String())
	}
	return a
}

// document is the JSON and YAML form of the answer: the model's answer
// alone, or with the kernel's and whether they agree.
func document(res, kres *fib.Result) any {
	a := toAnswer(res)
	if kres == nil {
		return a
	}
	diff := res.Diff(kres)
	if diff == nil {
		diff = []string{}
	}
	return map[string]any{
		"model":       a,
		"kernel":      toAnswer(kres),
		"agree":       len(diff) == 0,
		"differences": diff,
	}
}

// text renders the answer like `ip route get`, then the trace, then the
// kernel's answer when there is one.
func text(res, kres *fib.Result) string {
	var b strings.Builder
	b.WriteString(res.String() + "\n")
	for _, s := range res.Trace {
		b.WriteString("  " + s.String() + "\n")
	}
	if kres == nil {
		return cli.Untab(b.String())
	}
	b.WriteString("kernel: " + kres.String() + "\n")
	if d := res.Diff(kres); len(d) > 0 {
		b.WriteString("model and kernel DISAGREE:\n")
		for _, l := range d {
			b.WriteString("  " + l + " (model != kernel)\n")
		}
		return cli.Untab(b.String())
	}
	b.WriteString("model and kernel agree\n")
	return cli.Untab(b.String())
}
