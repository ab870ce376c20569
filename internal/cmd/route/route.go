// Package route is `fibguardctl route get`: the model's answer to where a
// packet goes, with the trace of how it got there.
package route

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/fib/live"
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
	cmd := &cobra.Command{Use: "route", Short: "Route lookups on the model"}
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
With --kernel, also ask the kernel (RTM_GETROUTE) and say whether both agree.`,
		Args: cobra.ExactArgs(1),
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
	cmd.Flags().StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	cmd.Flags().BoolVar(&f.kernel, "kernel", false, "also ask the kernel and compare (live namespaces only)")
	return cmd
}

func (f *flags) query(dst string) (fib.Query, error) {
	q := fib.Query{IIF: f.iif, OIF: f.oif, Mark: f.mark, TOS: f.tos}
	var err error
	if q.Dst, err = netip.ParseAddr(dst); err != nil {
		return q, fmt.Errorf("destination: %w", err)
	}
	if f.from != "" {
		if q.Src, err = netip.ParseAddr(f.from); err != nil {
			return q, fmt.Errorf("--from: %w", err)
		}
	}
	return q, nil
}

func run(w io.Writer, f *flags, dst string) error {
	if f.output != "text" && f.output != "json" {
		return fmt.Errorf("-o %q: want text or json", f.output)
	}
	if err := f.source.Validate(); err != nil {
		return err
	}
	if f.kernel && !f.source.Live() {
		return errors.New("--kernel needs a live namespace, not --snapshot or --example")
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
		return err
	}
	var kres *fib.Result
	if f.kernel {
		k, err := live.RouteGet(f.source.Netns, q)
		if err != nil {
			return fmt.Errorf("ask the kernel: %w", err)
		}
		kres = &k
	}
	if f.output == "json" {
		return writeJSON(w, &res, kres)
	}
	_, err = io.WriteString(w, text(&res, kres))
	return err
}

// answer is the JSON form of a result.
type answer struct {
	Dst     string   `json:"dst"`
	Type    string   `json:"type"`
	Table   string   `json:"table"`
	Dev     string   `json:"dev"`
	Gateway string   `json:"gateway"`
	PrefSrc string   `json:"prefsrc"`
	Error   string   `json:"error"`
	Rule    string   `json:"rule,omitempty"`
	Route   string   `json:"route,omitempty"`
	Trace   []string `json:"trace,omitempty"`
}

func toAnswer(r *fib.Result) answer {
	a := answer{Dst: r.Dst.String(), Error: r.ErrName()}
	for _, s := range r.Trace {
		a.Trace = append(a.Trace, s.String())
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
	}
	if r.Rule != nil {
		a.Rule = r.Rule.String()
	}
	if r.Route != nil {
		a.Route = r.Route.String()
	}
	return a
}

func writeJSON(w io.Writer, res, kres *fib.Result) error {
	out := map[string]any{}
	a := toAnswer(res)
	if kres == nil {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(a)
	}
	out["model"] = a
	out["kernel"] = toAnswer(kres)
	diff := res.Diff(kres)
	if diff == nil {
		diff = []string{}
	}
	out["agree"] = len(diff) == 0
	out["differences"] = diff
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
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
		return b.String()
	}
	b.WriteString("kernel: " + kres.String() + "\n")
	if d := res.Diff(kres); len(d) > 0 {
		b.WriteString("model and kernel DISAGREE:\n")
		for _, l := range d {
			b.WriteString("  " + l + " (model != kernel)\n")
		}
		return b.String()
	}
	b.WriteString("model and kernel agree\n")
	return b.String()
}
