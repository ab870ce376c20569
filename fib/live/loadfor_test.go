package live

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/internal/netgen"
	"github.com/fibguard/fibguard/internal/nstest"
)

// bulk returns `ip -batch` lines adding n /24 routes under first (an IPv4
// /8, such as 11) to a table through dev: the big table of a node that
// carries many routes.
func bulk(n int, first int, table, dev string) []string {
	lines := make([]string, 0, n)
	for i := range n {
		lines = append(lines, fmt.Sprintf("route add %d.%d.%d.0/24 dev %s table %s", first+i>>16, i>>8&0xff, i&0xff, dev, table))
	}
	return lines
}

// node is the host of the hand-written cases: eth0 (a veth with its peer
// up, so it has carrier) on 10.0.0.10/24 with a default route, and a
// bridge br0 for pods.
var node = []string{
	"link add eth0 type veth peer name eth0p",
	"link set eth0 up",
	"link set eth0p up",
	"addr add 10.0.0.10/24 dev eth0",
	"route add default via 10.0.0.1 dev eth0",
	"link add br0 type bridge",
	"link set br0 up",
}

// TestLoadFor builds the setups fibguard judges, on a node with thousands
// of routes in main and in table 100, and checks that LoadFor's model
// answers each destination as the kernel and Load's model do, while
// holding only the routes it needs where it should.
func TestLoadFor(t *testing.T) {
	withBulk := func(cmds ...string) []string {
		out := append(append(append([]string{}, node...), cmds...), bulk(3000, 11, "main", "eth0")...)
		return append(out, bulk(1000, 12, "100", "eth0")...)
	}
	tests := []struct {
		name string
		cmds []string
		// cmds6 are `ip -6` commands (batch mode has no -6).
		cmds6   [][]string
		sysctls [][2]string
		dsts    []string
		// maxFetched bounds the routes the model may hold beyond the
		// tables LoadFor always reads (see fetched); -1 when it may read
		// big tables whole (a refused lookup).
		maxFetched int
	}{
		{
			name:       "healthy bridge",
			cmds:       withBulk("addr add 10.88.0.1/24 dev br0", "addr add fd00:88::1/64 dev br0 nodad"),
			dsts:       []string{"10.88.0.2", "fd00:88::2", "8.8.8.8"},
			maxFetched: 3,
		},
		{
			name:       "127.16 bridge, tables merged",
			cmds:       withBulk("addr add 127.16.0.1/16 dev br0"),
			dsts:       []string{"127.16.0.2", "127.16.255.255", "127.0.0.1"},
			maxFetched: 3,
		},
		{
			name:       "127.16 bridge, tables unmerged",
			cmds:       withBulk("addr add 127.16.0.1/16 dev br0", "rule add pref 100 from 192.0.2.1 lookup 100", "rule del pref 100"),
			dsts:       []string{"127.16.0.2", "127.0.0.1"},
			maxFetched: 0,
		},
		{
			name:       "127.16 bridge, route_localnet",
			cmds:       withBulk("addr add 127.16.0.1/16 dev br0"),
			sysctls:    [][2]string{{"net.ipv4.conf.br0.route_localnet", "1"}},
			dsts:       []string{"127.16.0.2"},
			maxFetched: 1,
		},
		{
			// The kernel refuses 10.55.0.1 after its lookup (a loopback
			// source on br0); asked again from 10.0.0.10, it names the
			// route.
			name:       "loopback source on a bridge",
			cmds:       withBulk("addr add 127.16.0.1/16 dev br0", "route add 10.55.0.0/16 dev br0 src 127.16.0.1"),
			dsts:       []string{"10.55.0.1"},
			maxFetched: 1,
		},
		{
			// The same with a rule that selects on the source: asking
			// from another source could change the rule walk, so the
			// tables the lookup consults are read whole.
			name:       "loopback source on a bridge, a rule selecting on the source",
			cmds:       withBulk("addr add 127.16.0.1/16 dev br0", "route add 10.55.0.0/16 dev br0 src 127.16.0.1", "rule add pref 100 from 10.0.0.10 lookup 100"),
			dsts:       []string{"10.55.0.1"},
			maxFetched: -1,
		},
		{
			name: "pod IP equal to a host address",
			cmds: withBulk("link add fgnode0 type bridge", "link set fgnode0 up", "addr add 10.99.0.2/32 dev fgnode0",
				"addr add fd00:99::2/128 dev fgnode0 nodad", "addr add 10.99.0.1/24 dev br0", "addr add fd00:99::1/64 dev br0 nodad"),
			dsts:       []string{"10.99.0.2", "fd00:99::2", "10.99.0.3"},
			maxFetched: 3,
		},
		{
			name: "shadowed subnet",
			cmds: withBulk("addr add 10.88.0.1/24 dev br0", "link add fgshadow0 type veth peer name fgshadow1",
				"link set fgshadow0 up", "link set fgshadow1 up", "route add 10.88.0.0/25 dev fgshadow0"),
			dsts:       []string{"10.88.0.5", "10.88.0.200"},
			maxFetched: 2,
		},
		{
			// Table 100, consulted first, sends 10.0.0.0/8 elsewhere but
			// throws 10.88.0.0/16 back: the model holds the /8 (fetched
			// for 10.1.1.1) and must learn the throw.
			name: "throw route in front of the matched table",
			cmds: withBulk("addr add 10.88.0.1/24 dev br0", "link add fgvpn0 type veth peer name fgvpn1", "link set fgvpn0 up", "link set fgvpn1 up",
				"route add 10.0.0.0/8 dev fgvpn0 table 100", "route add throw 10.88.0.0/16 table 100", "rule add pref 100 lookup 100"),
			dsts:       []string{"10.1.1.1", "10.88.0.5"},
			maxFetched: 1005,
		},
		{
			// wg-quick: main unless its match is the default route, then
			// the tunnel's table.
			name: "suppress_prefixlength in front of the matched table",
			cmds: withBulk("addr add 10.88.0.1/24 dev br0", "link add fgwg0 type veth peer name fgwg1", "link set fgwg0 up", "link set fgwg1 up",
				"route add default dev fgwg0 table 51820", "rule add pref 100 lookup main suppress_prefixlength 0", "rule add pref 200 lookup 51820"),
			cmds6: [][]string{
				{"route", "add", "default", "dev", "fgwg0", "table", "51820"},
				{"rule", "add", "pref", "100", "lookup", "main", "suppress_prefixlength", "0"},
				{"rule", "add", "pref", "200", "lookup", "51820"},
				{"addr", "add", "fd00:88::1/64", "dev", "br0", "nodad"},
			},
			dsts:       []string{"10.88.0.5", "8.8.8.8", "fd00:88::5", "2001:db8::1"},
			maxFetched: 4,
		},
		{
			// Table 100's match for 10.88.0.5 goes through a device of
			// group 5, which the rule suppresses; its /8 (fetched for
			// 10.1.1.1) does not.
			name: "suppress_ifgroup in front of the matched table",
			cmds: withBulk("addr add 10.88.0.1/24 dev br0", "link add fgvpn0 type veth peer name fgvpn1", "link set fgvpn0 up", "link set fgvpn1 up",
				"link add fgg0 type veth peer name fgg1", "link set fgg0 group 5", "link set fgg0 up", "link set fgg1 up",
				"route add 10.0.0.0/8 dev fgvpn0 table 100", "route add 10.88.0.0/16 dev fgg0 table 100",
				"rule add pref 100 lookup 100 suppress_ifgroup 5"),
			dsts:       []string{"10.1.1.1", "10.88.0.5"},
			maxFetched: 1005,
		},
		{
			name:       "unreachable pod subnet",
			cmds:       withBulk("addr add 10.88.0.1/24 dev br0", "route add unreachable 10.77.0.0/16", "route add blackhole 10.78.0.0/16"),
			dsts:       []string{"10.77.0.5", "10.78.0.5", "10.88.0.5"},
			maxFetched: -1,
		},
		{
			name:       "blackhole rule",
			cmds:       withBulk("addr add 10.88.0.1/24 dev br0", "rule add pref 100 to 10.66.0.0/16 blackhole"),
			dsts:       []string{"10.66.0.1", "10.88.0.5"},
			maxFetched: 1,
		},
		{
			name:       "no route",
			cmds:       append(withBulk("addr add 10.88.0.1/24 dev br0"), "route del default"),
			dsts:       []string{"192.0.2.1", "10.88.0.5"},
			maxFetched: -1,
		},
		{
			name: "IPv6 multipath and multicast destinations",
			cmds: withBulk("addr add fd00:88::1/64 dev br0 nodad", "addr add fd00:1::10/64 dev eth0 nodad",
				"route add fd00:77::/64 nexthop via fd00:1::1 dev eth0 nexthop via fd00:1::2 dev eth0"),
			dsts:       []string{"fd00:77::5", "224.0.0.5", "255.255.255.255", "fd00:88::5"},
			maxFetched: -1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := nstest.NewWithLoUp(t)
			if err := n.Sysctl("net.ipv6.conf.all.accept_dad", "0"); err != nil {
				t.Fatal(err)
			}
			if err := n.Batch(tc.cmds); err != nil {
				t.Fatal(err)
			}
			for _, c := range tc.cmds6 {
				if _, err := n.IP(append([]string{"-6"}, c...)...); err != nil {
					t.Fatal(err)
				}
			}
			for _, s := range tc.sysctls {
				if err := n.Sysctl(s[0], s[1]); err != nil {
					t.Fatal(err)
				}
			}
			full := settled(t, n)
			var dsts []netip.Addr
			for _, d := range tc.dsts {
				dsts = append(dsts, netip.MustParseAddr(d))
			}
			m, err := LoadFor(n.Name(), dsts)
			if err != nil {
				t.Fatal(err)
			}
			if m.Unmerged() != full.Unmerged() {
				t.Errorf("Unmerged = %v, Load says %v", m.Unmerged(), full.Unmerged())
			}
			for _, d := range dsts {
				compareFor(t, n, m, full, d, "")
			}
			got := fetched(m)
			t.Logf("model: %d routes beyond the tables always read (Load: %d routes)", got, len(full.State().Routes))
			if tc.maxFetched >= 0 && got > tc.maxFetched {
				t.Errorf("the model holds %d routes beyond the tables always read, want at most %d", got, tc.maxFetched)
			}
		})
	}
}

// fetched counts a model's routes beyond the tables LoadFor always reads
// whole: IPv6's table local (for IPv6 destinations), and IPv4's unless the
// tables are merged.
func fetched(m *fib.Model) int {
	n := 0
	for _, r := range m.State().Routes {
		if r.Table == fib.TableLocal && (r.Family == fib.V6 || !merged(m)) {
			continue
		}
		n++
	}
	return n
}

// compareFor checks that the partial model answers the plain output
// lookup of dst as the kernel and as Load's full model do: the same
// Result fields, the same route and the same rule. Where the full model
// disagrees with the kernel, which is fib's concern (fib/difftest proves
// them equal), LoadFor promises nothing (its argument rests on that
// equality): the case is logged, not judged. script reproduces the setup.
func compareFor(t *testing.T, n *nstest.NS, partial, full *fib.Model, dst netip.Addr, script string) bool {
	t.Helper()
	q := fib.Query{Dst: dst}
	got, err := partial.Lookup(q)
	if err != nil {
		t.Fatalf("partial model: %s: %v", dst, err)
	}
	want, err := full.Lookup(q)
	if err != nil {
		t.Fatalf("full model: %s: %v", dst, err)
	}
	kernel, err := RouteGet(n.Name(), q)
	if err != nil {
		t.Fatalf("kernel: %s: %v", dst, err)
	}
	var problems []string
	if d := got.Diff(&want); len(d) > 0 {
		problems = append(problems, "vs Load: "+strings.Join(d, "; "))
	}
	if a, b := routeOf(got.Route), routeOf(want.Route); a != b {
		if merged(full) && sameButTable(got.Route, want.Route) {
			// LoadFor's documented limit: with the tables merged, the
			// kernel reports every entry in main, and LoadFor places it
			// by its type.
			t.Logf("ip route get %s: route %q is in table %s (merged tables: placed by its type)", dst, b, want.Route.Table)
		} else {
			problems = append(problems, fmt.Sprintf("route %q, Load's model: %q", a, b))
		}
	}
	if a, b := ruleOf(got.Rule), ruleOf(want.Rule); a != b {
		problems = append(problems, fmt.Sprintf("rule %q, Load's model: %q", a, b))
	}
	if d := want.Diff(&kernel); len(d) > 0 {
		t.Logf("ip route get %s: Load's model disagrees with the kernel (%s), a matter for fib/difftest; LoadFor's model: %v", dst, strings.Join(d, "; "), problems)
		return true
	}
	if d := got.Diff(&kernel); len(d) > 0 {
		problems = append(problems, "vs kernel: "+strings.Join(d, "; "))
	}
	if len(problems) == 0 {
		return true
	}
	var trace strings.Builder
	for _, s := range got.Trace {
		fmt.Fprintf(&trace, "\n    %s", s)
	}
	t.Errorf("ip route get %s: LoadFor's model %q, Load's %q, kernel %q:\n  %s\n  trace:%s\nreproducer:\n%s",
		dst, got.String(), want.String(), kernel.String(), strings.Join(problems, "\n  "), trace.String(), script)
	return false
}

// merged reports whether a model's IPv4 local and main tables are merged.
func merged(m *fib.Model) bool {
	return !m.Unmerged() && defaultRules4(m.State().Rules)
}

// sameButTable reports whether two routes differ in their table only, one
// in local and the other in main.
func sameButTable(a, b *fib.Route) bool {
	if a == nil || b == nil {
		return false
	}
	ca, cb := *a, *b
	tables := []fib.TableID{ca.Table, cb.Table}
	ca.Table, cb.Table = 0, 0
	return routeOf(&ca) == routeOf(&cb) && slices.Contains(tables, fib.TableLocal) && slices.Contains(tables, fib.TableMain)
}

func routeOf(r *fib.Route) string {
	if r == nil {
		return ""
	}
	b, _ := r.MarshalText()
	return string(b)
}

func ruleOf(r *fib.Rule) string {
	if r == nil {
		return ""
	}
	return r.String()
}

// settled loads the namespace until two loads in a row agree (IPv6
// link-local addresses and their routes appear after a device gets
// carrier) and returns the full model.
func settled(t *testing.T, n *nstest.NS) *fib.Model {
	t.Helper()
	m, err := n.SettledModel(func() (*fib.Model, error) { return Load(n.Name()) })
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// loadForSetups is how many random setups TestLoadForRandom runs:
// FIBGUARD_LOADFOR_SETUPS, or 40.
func loadForSetups() int {
	if n, err := strconv.Atoi(os.Getenv("FIBGUARD_LOADFOR_SETUPS")); err == nil && n > 0 {
		return n
	}
	return 40
}

// TestLoadForRandom is the differential test of LoadFor: random setups of
// internal/netgen (merged and unmerged tables, rules of every action with
// suppressors, throw and reject routes, 127.x addresses, route_localnet),
// plus thousands of routes in main and tables 100 and 200 that overlap the
// setup's networks; for sets of destinations drawn from the setup, each
// answer of LoadFor's model must be the kernel's and Load's model's.
func TestLoadForRandom(t *testing.T) {
	const (
		sets       = 4
		dstsPerSet = 6
	)
	total, failed := 0, 0
	for seed := range uint64(loadForSetups()) {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			setup := netgen.New(seed)
			n := nstest.New(t)
			extra := extraRoutes(seed, setup.Devices, 3000)
			applySetup(t, n, setup, extra)
			full := settled(t, n)
			script := fmt.Sprintf("# seed %d\n%s# plus %d routes: ip -n x -force -batch of extraRoutes(%d)\n", seed, setup.Script("x"), len(extra), seed)
			candidates := destinations(full)
			r := rand.New(rand.NewPCG(seed, 11))
			for range sets {
				dsts := nestedPairs(r, full, dstsPerSet/2)
				for len(dsts) < dstsPerSet {
					dsts = append(dsts, candidates[r.IntN(len(candidates))])
				}
				m, err := LoadFor(n.Name(), dsts)
				if err != nil {
					t.Fatalf("LoadFor(%v): %v\n%s", dsts, err, script)
				}
				for _, d := range dsts {
					total++
					if !compareFor(t, n, m, full, d, fmt.Sprintf("%s# LoadFor(%v)\n", script, dsts)) {
						failed++
					}
				}
			}
		})
		if failed > 10 {
			t.Fatalf("stopping after %d disagreements", failed)
		}
	}
	t.Logf("%d setups, %d destinations, %d disagreements", loadForSetups(), total, failed)
}

// applySetup runs a netgen setup in the namespace, then the extra routes.
func applySetup(t *testing.T, n *nstest.NS, s *netgen.Setup, extra []string) {
	t.Helper()
	if err := s.Apply(n); err != nil {
		t.Fatal(err)
	}
	netgen.ForceBatch(n, extra)
}

// extraRoutes returns n random unicast routes in main, 100 and 200, in
// the address pools netgen draws from (so they overlap the setup's
// networks, shadow them or are shadowed), through the setup's devices;
// some are throw, blackhole or unreachable routes. In most setups, rules
// then send every lookup through table 100 or 200, with or without a
// suppressor, before main: the tables a partial model holds in part.
func extraRoutes(seed uint64, devs []string, n int) []string {
	r := rand.New(rand.NewPCG(seed, 13))
	tables := []string{"main", "main", "main", "100", "200"}
	lines := make([]string, 0, n+2)
	switch r.IntN(3) {
	case 0:
		lines = append(lines, "rule add pref 30000 lookup 100", "rule add pref 30100 lookup 200 suppress_prefixlength 16")
	case 1:
		lines = append(lines, fmt.Sprintf("rule add pref 30000 lookup 200 suppress_ifgroup %d", r.IntN(2)), "rule add pref 30100 lookup 100")
	}
	for _, d := range devs {
		if r.IntN(3) == 0 {
			lines = append(lines, fmt.Sprintf("link set %s group 1", d))
		}
	}
	for range n {
		var dst netip.Prefix
		if r.IntN(5) == 0 {
			a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(r.IntN(4)), 0, 0, byte(r.IntN(256)), 0, 0, 0, 0, 0, 0, 0, byte(r.IntN(256))})
			dst = netip.PrefixFrom(a, []int{48, 56, 64, 96, 120}[r.IntN(5)]).Masked()
		} else {
			pools := [][2]byte{{10, 0}, {172, 16}, {192, 168}, {127, 16}, {11, 0}}
			p := pools[r.IntN(len(pools))]
			a := netip.AddrFrom4([4]byte{p[0], p[1] + byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256))})
			if p[0] == 10 {
				a = netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(4)), byte(r.IntN(256))})
			}
			dst = netip.PrefixFrom(a, 16+r.IntN(17)).Masked()
		}
		table := tables[r.IntN(len(tables))]
		switch r.IntN(24) {
		case 0:
			lines = append(lines, fmt.Sprintf("route add throw %s table %s", dst, table))
		case 1:
			lines = append(lines, fmt.Sprintf("route add blackhole %s table %s", dst, table))
		case 2:
			lines = append(lines, fmt.Sprintf("route add unreachable %s table %s", dst, table))
		default:
			lines = append(lines, fmt.Sprintf("route add %s dev %s table %s metric %d", dst, devs[r.IntN(len(devs))], table, r.IntN(3)*100))
		}
	}
	return lines
}

// destinations are the addresses a random test looks up: the model's
// addresses and their neighbours, the first and a middle address of each
// route, and addresses that matter for pods.
func destinations(m *fib.Model) []netip.Addr {
	var dsts []netip.Addr
	for _, a := range m.State().Addrs {
		p := a.Prefix
		dsts = append(dsts, p.Addr(), p.Addr().Next(), p.Masked().Addr())
	}
	for _, rt := range m.State().Routes {
		dsts = append(dsts, rt.Dst.Addr(), rt.Dst.Addr().Next())
	}
	for _, s := range []string{"127.0.0.1", "127.16.0.5", "8.8.8.8", "10.1.2.3", "192.168.1.1", "224.0.0.5", "2001:db8:1::5", "::1", "fd00::5"} {
		dsts = append(dsts, netip.MustParseAddr(s))
	}
	return dsts
}

// nestedPairs draws up to n pairs of destinations around two routes, A
// and B, of one table, where B's prefix holds A's: A's first address,
// and an address of B outside A. A set with both makes LoadFor fetch B
// for the second while A, which may be a throw route or a route a rule
// suppresses, decides the first: the case where a fetched route must not
// stand in for one the model lacks.
func nestedPairs(r *rand.Rand, m *fib.Model, n int) []netip.Addr {
	var dsts []netip.Addr
	for range 200 * n {
		if len(dsts) >= 2*n {
			break
		}
		a := m.State().Routes[r.IntN(len(m.State().Routes))]
		b := m.State().Routes[r.IntN(len(m.State().Routes))]
		if a.Family != b.Family || a.Table != b.Table || b.Dst.Bits() >= a.Dst.Bits() || !b.Dst.Contains(a.Dst.Addr()) {
			continue
		}
		out := randomIn(r, b.Dst)
		if a.Dst.Contains(out) {
			continue
		}
		dsts = append(dsts, a.Dst.Addr(), out)
	}
	return dsts
}

// randomIn returns a random address of a prefix.
func randomIn(r *rand.Rand, p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		if r.IntN(2) == 1 {
			b[i/8] |= 0x80 >> (i % 8)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// TestLoadForErrors: bad input is an error naming it, never a panic.
func TestLoadForErrors(t *testing.T) {
	n := nstest.NewWithLoUp(t)
	closed, err := Open(n.Name())
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	closed.Close()
	tests := []struct {
		name string
		load func() error
		want string
	}{
		{"invalid destination", func() error {
			_, err := LoadFor(n.Name(), []netip.Addr{netip.MustParseAddr("10.0.0.1"), {}})
			return err
		}, "destination 1 is not a valid address"},
		{"missing namespace", func() error {
			_, err := LoadFor("/nonexistent/netns", []netip.Addr{netip.MustParseAddr("10.0.0.1")})
			return err
		}, "/nonexistent/netns"},
		{"closed namespace, LoadFor", func() error {
			_, err := closed.LoadFor(nil)
			return err
		}, "closed"},
		{"closed namespace, RouteGet", func() error {
			_, err := closed.RouteGet(fib.Query{Dst: netip.MustParseAddr("10.0.0.1")})
			return err
		}, "closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.load()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one naming %q", err, tt.want)
			}
		})
	}
}

// TestNamespace loads a model and asks the kernel over one open namespace,
// as the plugin does: the answers agree, and no destination is also fine.
func TestNamespace(t *testing.T) {
	n := nstest.NewWithLoUp(t)
	if err := n.Batch(append(append([]string{}, node...), "addr add 10.88.0.1/24 dev br0")); err != nil {
		t.Fatal(err)
	}
	settle(t, n)
	ns, err := Open(n.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if _, err := ns.LoadFor(nil); err != nil {
		t.Fatalf("LoadFor of no destination: %v", err)
	}
	dst := netip.MustParseAddr("10.88.0.2")
	m, err := ns.LoadFor([]netip.Addr{dst, dst})
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Lookup(fib.Query{Dst: dst})
	if err != nil {
		t.Fatal(err)
	}
	want, err := ns.RouteGet(fib.Query{Dst: dst})
	if err != nil {
		t.Fatal(err)
	}
	if d := got.Diff(&want); len(d) > 0 || got.Dev != "br0" {
		t.Errorf("model %q, kernel %q: %v", got.String(), want.String(), d)
	}
}
