package route

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/fib/live"
	"github.com/fibguard/fibguard/internal/cmd/source"
	"github.com/fibguard/fibguard/internal/netgen"
	"github.com/fibguard/fibguard/internal/nstest"
)

// dumpNamespace runs the six `ip -j` commands of source.DumpFiles in the
// namespace, as an operator would on a node, and writes their outputs
// into a new directory.
func dumpNamespace(t *testing.T, ns *nstest.NS) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range source.DumpFiles {
		args := strings.Fields(f.Command)[1:] // without "ip"
		out, err := ns.IP(args...)
		if err != nil {
			t.Fatalf("%s: %v", f.Command, err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.Name), out, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// setups is how many random namespaces TestIPDumpMatchesLive builds:
// FIBGUARD_IPDUMP_SETUPS, or 40.
func setups() int {
	if n, err := strconv.Atoi(os.Getenv("FIBGUARD_IPDUMP_SETUPS")); err == nil && n > 0 {
		return n
	}
	return 40
}

// TestIPDumpMatchesLive builds random namespaces (package netgen: links,
// addresses with 127.x and secondaries, routes of every type in several
// tables, rules of every action, both families), captures the six dumps
// with the real ip(8), and asks the model read from them where packets
// go: every answer must be the kernel's own (RTM_GETROUTE) and that of
// the model read live over netlink. The dumps carry no sysctls, so the
// setups keep the namespace's defaults (no route_localnet, forwarding or
// rp_filter per device). A few queries per setup go through the command
// itself, `route get --ip-dump DIR -o json`, whose exit code must follow
// the answer.
func TestIPDumpMatchesLive(t *testing.T) {
	const queriesPerSetup = 40
	total, disagree := 0, 0
	for seed := range uint64(setups()) {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			n, d := compareSetup(t, seed, queriesPerSetup)
			total, disagree = total+n, disagree+d
		})
		if disagree > 10 {
			t.Fatalf("stopping after %d disagreements", disagree)
		}
	}
	t.Logf("%d setups, %d queries, %d disagreements", setups(), total, disagree)
}

// compareSetup builds one setup and compares answers; it returns how many
// queries it asked and how many answers differed.
func compareSetup(t *testing.T, seed uint64, queries int) (int, int) {
	setup := netgen.New(seed)
	setup.DevSysctls = nil
	ns := nstest.New(t)
	if err := setup.Apply(ns); err != nil {
		t.Fatal(err)
	}
	liveModel, err := ns.SettledModel(func() (*fib.Model, error) { return live.Load(ns.Path()) })
	if err != nil {
		t.Fatal(err)
	}
	dir := dumpNamespace(t, ns)
	asRead, err := source.LoadIPDump(dir)
	if err != nil {
		t.Fatalf("LoadIPDump: %v\nreproducer:\n%s", err, setup.Script("x"))
	}
	dumped := asRead.Clone()
	if dumped.Unmerged() != liveModel.Unmerged() {
		// The one thing the dumps cannot show: a custom IPv4 rule added
		// and deleted again leaves the tables split with the default
		// rules (docs/fibguardctl.md says so). Every other answer must
		// still be the kernel's.
		if !liveModel.Unmerged() || hasCustomRule4(dumped) {
			t.Fatalf("merged tables: dumps say unmerged=%v, live %v", dumped.Unmerged(), liveModel.Unmerged())
		}
		t.Logf("a custom IPv4 rule was added and deleted: the tables stay split, which the dumps cannot show")
		st := dumped.State()
		st.Unmerged = true
		dumped = fib.FromState(st)
	}
	n, bad := 0, 0
	for i, q := range netgen.Queries(seed, liveModel, setup.Devices, queries) {
		n++
		got, err := dumped.Lookup(q)
		if err != nil {
			t.Fatalf("%s: %v", queryText(q), err)
		}
		if !agrees(t, ns, liveModel, q, &got) {
			bad++
			t.Logf("reproducer:\n%s", setup.Script("x"))
		}
		if i < 3 {
			viaCommand(t, dir, asRead, q)
		}
	}
	return n, bad
}

// hasCustomRule4 reports whether the model has IPv4 rules other than the
// three defaults.
func hasCustomRule4(m *fib.Model) bool {
	var v4 []fib.Rule
	for _, r := range m.State().Rules {
		if r.Family == fib.V4 {
			v4 = append(v4, r)
		}
	}
	return !slices.Equal(v4, fib.DefaultRules(fib.V4))
}

// agrees compares the dump model's answer with the live model's and the
// kernel's, reporting each difference.
func agrees(t *testing.T, ns *nstest.NS, liveModel *fib.Model, q fib.Query, got *fib.Result) bool {
	t.Helper()
	want, err := liveModel.Lookup(q)
	if err != nil {
		t.Fatalf("live model: %s: %v", queryText(q), err)
	}
	kernel, err := live.RouteGet(ns.Path(), q)
	if err != nil {
		t.Fatalf("kernel: %s: %v", queryText(q), err)
	}
	ok := true
	for _, other := range []struct {
		name string
		res  *fib.Result
	}{{"live model", &want}, {"kernel", &kernel}} {
		if d := got.Diff(other.res); len(d) > 0 {
			t.Errorf("`%s`: --ip-dump and %s disagree: %s\n  ip-dump: %s\n  %s: %s", queryText(q), other.name, strings.Join(d, "; "), got, other.name, other.res)
			ok = false
		}
	}
	return ok
}

// viaCommand asks `route get --ip-dump` the query and checks its JSON
// answer and exit code against the answer of the model read from the
// dumps.
func viaCommand(t *testing.T, dir string, m *fib.Model, q fib.Query) {
	t.Helper()
	want, err := m.Lookup(q)
	if err != nil {
		t.Fatalf("%s: %v", queryText(q), err)
	}
	out, err := execute(t, commandArgs(dir, q)...)
	var a answer
	if jerr := json.Unmarshal([]byte(out), &a); jerr != nil {
		t.Fatalf("%s: %v (%v)\n%s", queryText(q), jerr, err, out)
	}
	if a.Error != want.ErrName() || (a.Error == "" && a.Dev != want.Dev) {
		t.Errorf("%s: command answers %+v, model %s", queryText(q), a, &want)
	}
	if (err != nil) != (want.Err != 0) {
		t.Errorf("%s: command error %v for answer %s", queryText(q), err, &want)
	}
}

func commandArgs(dir string, q fib.Query) []string {
	args := []string{"get", "--ip-dump", dir, "-o", "json", q.Dst.String()}
	if q.Src.IsValid() {
		args = append(args, "--from", q.Src.String())
	}
	for _, kv := range [][2]string{{"--iif", q.IIF}, {"--oif", q.OIF}} {
		if kv[1] != "" {
			args = append(args, kv[0], kv[1])
		}
	}
	if q.Mark != 0 {
		args = append(args, "--mark", strconv.FormatUint(uint64(q.Mark), 10))
	}
	if q.TOS != 0 {
		args = append(args, "--tos", strconv.Itoa(int(q.TOS)))
	}
	return args
}

func queryText(q fib.Query) string {
	return "ip route get " + strings.Join(commandArgs("", q)[5:], " ") + " (" + q.Dst.String() + ")"
}
