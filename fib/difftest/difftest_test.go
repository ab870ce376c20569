package difftest

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/fib/live"
	"github.com/fibguard/fibguard/internal/netgen"
	"github.com/fibguard/fibguard/internal/nstest"
)

// settle loads the namespace until two loads in a row agree: IPv6
// link-local addresses and their routes appear asynchronously after a
// device gets carrier, and the model must see what the kernel will use.
//
// It also waits until every IPv6 address that is not tentative has its
// local route: the kernel adds that route from its addrconf work, after
// `ip addr add` has returned, even for a nodad address on a down device.
// The work takes the RTNL lock, which the teardown of other namespaces
// (the previous test's) can hold for longer than two loads 50 ms apart
// take: TestWhatIfMatchesKernel flaked so, the what-if model holding
// local routes the kernel had not added yet.
//
// And it waits until no IPv6 address of a device with carrier is
// tentative. The random setups set accept_dad=0, yet a link-local
// address is listed tentative, without its local route, from the moment
// its device gets carrier until addrconf's DAD work runs, which takes
// the RTNL lock (held by other namespaces' teardown on a busy machine);
// with DAD on it is tentative for 1-2 s. Two loads 50 ms apart agree
// all along, and missingLocal6 passes tentative addresses over. Once the
// work has run the kernel picks the address as a source (`ip route get
// 2001:db8:9::1` through `nexthop via fe80::3 dev A` on a device with
// only its link-local address: `src ::1`, then `src fe80::...`), so a
// model loaded before then disagrees on the source of later queries:
// TestRandomMultipath once reported 4 disagreements on one IPv6 setup
// with link-local next hops on a loaded machine. An address on a device
// without carrier stays tentative and is not waited for; one whose
// detection fails, or that never gets its local route (none is known),
// costs at most 10 s.
func settle(t *testing.T, ns *nstest.NS) *fib.Model {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := ns.SettledModel(func() (*fib.Model, error) { return live.Load(ns.Path()) })
		if err != nil {
			t.Fatal(err)
		}
		if (!missingLocal6(m) && !tentative6(m)) || time.Now().After(deadline) {
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// missingLocal6 reports whether an IPv6 address that is not tentative
// lacks its local route (any table: a VRF's device has it in the VRF's).
func missingLocal6(m *fib.Model) bool {
	local := map[netip.Addr]bool{}
	for r := range m.Routes() {
		if r.Family == fib.V6 && r.Type == fib.TypeLocal && r.Dst.IsSingleIP() {
			local[r.Dst.Addr()] = true
		}
	}
	for a := range m.Addrs() {
		if a.Prefix.Addr().Is6() && !a.Tentative && !local[a.Prefix.Addr()] {
			return true
		}
	}
	return false
}

// tentative6 reports whether an IPv6 address of a device that is up
// with carrier is still tentative: its duplicate address detection is
// under way and will end with the address usable.
func tentative6(m *fib.Model) bool {
	for a := range m.Addrs() {
		if !a.Tentative || !a.Prefix.Addr().Is6() {
			continue
		}
		if l, ok := m.Link(a.Link); ok && l.Up && l.Carrier {
			return true
		}
	}
	return false
}

func queryText(q fib.Query) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ip route get %s", q.Dst)
	if q.Src.IsValid() {
		fmt.Fprintf(&b, " from %s", q.Src)
	}
	if q.IIF != "" {
		fmt.Fprintf(&b, " iif %s", q.IIF)
	}
	if q.OIF != "" {
		fmt.Fprintf(&b, " oif %s", q.OIF)
	}
	if q.Mark != 0 {
		fmt.Fprintf(&b, " mark %d", q.Mark)
	}
	if q.TOS != 0 {
		fmt.Fprintf(&b, " tos 0x%x", q.TOS)
	}
	return b.String()
}

// compare asks model and kernel and reports a disagreement with a
// reproducer.
func compare(t *testing.T, ns *nstest.NS, m *fib.Model, q fib.Query, script string) (fib.Result, bool) {
	t.Helper()
	got, err := m.Lookup(q)
	if err != nil {
		t.Fatalf("model: %s: %v", queryText(q), err)
	}
	want, err := live.RouteGet(ns.Path(), q)
	if err != nil {
		t.Fatalf("kernel: %s: %v", queryText(q), err)
	}
	if d := got.Diff(&want); len(d) > 0 {
		var trace strings.Builder
		for _, s := range got.Trace {
			fmt.Fprintf(&trace, "\n    %s", s)
		}
		t.Errorf("model and kernel disagree on `%s`:\n  %s\n  model:  %s%s\n  kernel: %s\nreproducer:\n%s",
			queryText(q), strings.Join(d, "\n  "), got.String(), trace.String(), want.String(), script)
		return got, false
	}
	return got, true
}

// seeds returns how many random setups to run: FIBGUARD_DIFF_SETUPS, or
// 200 (the CI minimum).
func seeds() int {
	if n, err := strconv.Atoi(os.Getenv("FIBGUARD_DIFF_SETUPS")); err == nil && n > 0 {
		return n
	}
	return 200
}

func TestRandomSetups(t *testing.T) {
	const queriesPerSetup = 30
	total, multipath, disagree := 0, 0, 0
	for seed := range uint64(seeds()) {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			setup := netgen.New(seed)
			ns := nstest.New(t)
			if err := setup.Apply(ns); err != nil {
				t.Fatal(err)
			}
			m := settle(t, ns)
			script := fmt.Sprintf("# seed %d\n%s", seed, setup.Script("x"))
			for _, q := range netgen.Queries(seed, m, setup.Devices, queriesPerSetup) {
				total++
				got, ok := compare(t, ns, m, q, script)
				if !ok {
					disagree++
				}
				if len(got.Paths) > 1 {
					multipath++
				}
			}
		})
		if disagree > 20 {
			t.Fatalf("stopping after %d disagreements", disagree)
		}
	}
	t.Logf("%d setups, %d queries (%d answered by a multipath route), %d disagreements", seeds(), total, multipath, disagree)
}

// TestRandomMultipath runs the random setups again, querying only the
// destinations of their multipath routes (routes with several next hops
// of their own, and routes through nexthop objects and groups): the
// kernel's choice must be one of the next hops the model answers with.
func TestRandomMultipath(t *testing.T) {
	const queriesPerSetup = 30
	total, multipath, disagree := 0, 0, 0
	for seed := range uint64(seeds()) {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			setup := netgen.New(seed)
			ns := nstest.New(t)
			if err := setup.Apply(ns); err != nil {
				t.Fatal(err)
			}
			m := settle(t, ns)
			script := fmt.Sprintf("# seed %d\n%s", seed, setup.Script("x"))
			for _, q := range netgen.MultipathQueries(seed, m, setup.Devices, queriesPerSetup) {
				total++
				got, ok := compare(t, ns, m, q, script)
				if !ok {
					disagree++
				}
				if len(got.Paths) > 1 {
					multipath++
				}
			}
		})
		if disagree > 20 {
			t.Fatalf("stopping after %d disagreements", disagree)
		}
	}
	if multipath == 0 {
		t.Fatal("no query was answered by a multipath route: the generator makes none")
	}
	t.Logf("%d setups, %d queries of multipath destinations (%d answered with several next hops), %d disagreements", seeds(), total, multipath, disagree)
}
