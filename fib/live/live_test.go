package live

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/internal/netgen"
	"github.com/fibguard/fibguard/internal/nstest"
	"golang.org/x/sys/unix"
)

// worldCmds build a namespace with a bit of everything Load reads. The
// rules make it unmerged.
var worldCmds = []string{
	"link add br0 type bridge",
	// No IPv6 link-local address: its duplicate address detection would
	// change the namespace while the tests read it.
	"link set br0 addrgenmode none",
	"link set br0 up",
	"addr add 10.1.2.3/24 dev br0",
	"addr add 127.16.0.1/16 dev br0",
	"addr add 10.1.2.4/24 dev br0",
	"addr add 10.4.0.1/24 dev br0 noprefixroute",
	"addr add 2001:db8:1::1/64 dev br0 nodad",
	"addr add 2001:db8:8::1/64 dev br0 nodad preferred_lft 0",
	// va is up without carrier (its peer vb is down): routes through it
	// are linkdown, its IPv6 address stays tentative, and br0 loses its
	// carrier too.
	"link add va type veth peer name vb",
	"link set va master br0",
	"link set va up",
	"link set vb group 7",
	"addr add 10.2.0.1/24 dev va",
	"addr add 10.3.0.1 peer 10.3.0.2/32 dev va",
	"addr add 2001:db8:7::1/64 dev va",
	"route add unreachable 10.9.0.0/16",
	"route add 10.60.0.0/16 via 10.2.0.254 dev va",
	"route add 10.61.0.0/16 via 10.2.0.253 dev va onlink",
	"route add 10.80.0.0/16 tos 0x10 dev br0 metric 7 proto static",
	"route add 10.81.0.0/16 dev br0 proto 250",
	"route add 10.95.0.0/16 via inet6 fe80::1 dev br0",
	"route add 10.50.0.0/16 dev br0 table 100",
	"route add 10.70.0.0/16 table 100 nexthop via 10.1.2.10 dev br0 weight 2 nexthop via 10.1.2.11 dev br0",
	"route add 10.90.0.0/16 dev br0 table 200",
	"route add 10.91.0.0/16 dev br0 table 300",
	"route add 2001:db8:2::/64 from 2001:db8:1::/64 via 2001:db8:1::ff dev br0",
	"route add 2001:db8:3::/64 dev br0 table 100 nexthop via 2001:db8:1::fe dev br0 nexthop via 2001:db8:1::fd dev br0",
	"route add unreachable 2001:db8:9::/48",
	"rule add pref 1000 not from 10.1.2.0/24 to 10.50.0.0/16 lookup 100",
	"rule add pref 1001 fwmark 0x10/0xff iif br0 oif va ipproto tcp sport 1000 dport 80-90 uidrange 100-200 goto 1003",
	"rule add pref 1002 tos 0x10 blackhole",
	"rule add pref 1003 lookup main suppress_prefixlength 0 suppress_ifgroup 5",
	"rule add pref 1004 fwmark 0x20 unreachable",
	"rule add pref 1005 fwmark 0x30 prohibit",
	"rule add pref 1006 nop",
	"rule add pref 1007 fwmark 0x40/0xff ipproto udp dport 53 lookup 200",
	"rule add pref 1008 uidrange 1000-1000 lookup 300",
}

// worldSysctls differ from a new namespace's defaults.
var worldSysctls = [][2]string{
	{"net.ipv4.conf.br0.route_localnet", "1"},
	{"net.ipv4.conf.all.rp_filter", "2"},
	{"net.ipv4.conf.va.ignore_routes_with_linkdown", "1"},
	{"net.ipv4.conf.vb.forwarding", "1"},
}

func newWorld(t *testing.T) *nstest.NS {
	t.Helper()
	n := nstest.NewWithLoUp(t)
	if err := n.Batch(worldCmds); err != nil {
		t.Fatal(err)
	}
	// Batch mode has no -6, and an IPv6 rule needs it.
	if _, err := n.IP("-6", "rule", "add", "pref", "2000", "from", "2001:db8::/64", "lookup", "100"); err != nil {
		t.Fatal(err)
	}
	for _, s := range worldSysctls {
		if err := n.Sysctl(s[0], s[1]); err != nil {
			t.Fatal(err)
		}
	}
	settle(t, n)
	return n
}

// settle waits until the kernel has processed the carrier changes of every
// device. A carrier change shows at once in IFF_LOWER_UP, but the
// operational state and the linkdown flags of routes follow when the
// kernel's linkwatch gets to it, up to a second later; comparing Load with
// ip before that would race.
func settle(t *testing.T, n *nstest.NS) {
	t.Helper()
	if err := n.Settle(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// ipJSON runs `ip -j ARGS` in the namespace and decodes its output.
func ipJSON(t *testing.T, n *nstest.NS, v any, args ...string) {
	t.Helper()
	out, err := n.IP(append([]string{"-j"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("ip -j %s: %v", strings.Join(args, " "), err)
	}
}

func TestLoad(t *testing.T) {
	n := newWorld(t)
	m, err := Load(n.Name())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(); err != nil {
		t.Errorf("loaded model does not validate: %v", err)
	}
	if !m.Unmerged() {
		t.Error("Unmerged = false in a namespace with custom rules")
	}
	t.Run("links", func(t *testing.T) { checkLinks(t, n, m) })
	t.Run("addrs", func(t *testing.T) { checkAddrs(t, n, m) })
	t.Run("routes", func(t *testing.T) { checkRoutes(t, n, m) })
	t.Run("rules", func(t *testing.T) { checkRules(t, n, m) })
	t.Run("conf", func(t *testing.T) { checkConf(t, n, m) })
}

// TestLoadPath loads the same namespace by name and by path.
func TestLoadPath(t *testing.T) {
	n := nstest.NewWithLoUp(t)
	byName, err := Load(n.Name())
	if err != nil {
		t.Fatal(err)
	}
	byPath, err := Load(n.Path())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(byName.State())
	b, _ := json.Marshal(byPath.State())
	if !bytes.Equal(a, b) {
		t.Errorf("by name:\n%s\nby path:\n%s", a, b)
	}
	if _, err := Load("fgt-no-such-namespace"); err == nil {
		t.Error("Load of a missing namespace succeeded")
	}
}

// TestLoadCurrent reads the namespace the test runs in, which needs no
// privileges, and changes nothing.
func TestLoadCurrent(t *testing.T) {
	m, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(m.State().Links, func(l fib.Link) bool { return l.Kind == fib.KindLoopback }) {
		t.Errorf("no loopback device among %+v", m.State().Links)
	}
	if _, ok := m.State().Conf[fib.ConfAll]; !ok {
		t.Errorf("no net.ipv4.conf.all in %+v", m.State().Conf)
	}
}

// TestLoadEmpty loads a namespace as the kernel creates it: it is
// NewModel's, with the loopback device's sysctls.
func TestLoadEmpty(t *testing.T) {
	n := nstest.New(t)
	m, err := Load(n.Name())
	if err != nil {
		t.Fatal(err)
	}
	want := fib.NewModel()
	if !slices.Equal(m.State().Links, want.State().Links) {
		t.Errorf("links = %+v, want %+v", m.State().Links, want.State().Links)
	}
	if !slices.Equal(m.State().Rules, want.State().Rules) {
		t.Errorf("rules = %+v, want %+v", m.State().Rules, want.State().Rules)
	}
	if len(m.State().Addrs) != 0 || len(m.State().Routes) != 0 {
		t.Errorf("addresses %+v and routes %+v in an empty namespace", m.State().Addrs, m.State().Routes)
	}
	if m.Unmerged() {
		t.Error("Unmerged = true in a new namespace")
	}
	if _, ok := m.State().Conf["lo"]; !ok || len(m.State().Conf) != 2 {
		t.Errorf("conf = %+v, want all and lo", m.State().Conf)
	}
}

// TestLoadL3MDev checks the l3mdev flag of a rule, which has no table.
func TestLoadL3MDev(t *testing.T) {
	n := nstest.New(t)
	if err := n.Batch([]string{"rule add pref 900 l3mdev"}); err != nil {
		t.Fatal(err)
	}
	m, err := Load(n.Name())
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(m.State().Rules, func(r fib.Rule) bool { return r.Priority == 900 })
	if i < 0 || !m.State().Rules[i].L3MDev || m.State().Rules[i].Action != fib.ActionLookup {
		t.Errorf("rules = %+v, want 900 l3mdev lookup", m.State().Rules)
	}
}

type ipLink struct {
	Index    int      `json:"ifindex"`
	Name     string   `json:"ifname"`
	Flags    []string `json:"flags"`
	Master   string   `json:"master"`
	Group    string   `json:"group"`
	LinkInfo struct {
		Kind string `json:"info_kind"`
	} `json:"linkinfo"`
}

func checkLinks(t *testing.T, n *nstest.NS, m *fib.Model) {
	var links []ipLink
	ipJSON(t, n, &links, "-d", "link", "show")
	index := make(map[string]int)
	for _, l := range links {
		index[l.Name] = l.Index
	}
	var want []fib.Link
	for _, l := range links {
		fl := fib.Link{
			Index:   l.Index,
			Name:    l.Name,
			Kind:    fib.KindOther,
			Up:      slices.Contains(l.Flags, "UP"),
			Carrier: slices.Contains(l.Flags, "LOWER_UP"),
			Master:  index[l.Master],
		}
		switch {
		case slices.Contains(l.Flags, "LOOPBACK"):
			fl.Kind = fib.KindLoopback
		case l.LinkInfo.Kind == "bridge", l.LinkInfo.Kind == "veth", l.LinkInfo.Kind == "vrf":
			fl.Kind = fib.LinkKind(l.LinkInfo.Kind)
		}
		if l.Group != "default" {
			g, err := strconv.ParseUint(l.Group, 10, 32)
			if err != nil {
				t.Fatalf("group of %s: %v", l.Name, err)
			}
			fl.Group = uint32(g)
		}
		want = append(want, fl)
	}
	if !slices.Equal(m.State().Links, want) {
		t.Errorf("links:\n got %+v\nwant %+v", m.State().Links, want)
	}
}

type ipAddrLink struct {
	Name  string `json:"ifname"`
	Addrs []struct {
		Family        string `json:"family"`
		Local         string `json:"local"`
		Peer          string `json:"address"`
		PrefixLen     int    `json:"prefixlen"`
		Scope         string `json:"scope"`
		Secondary     bool   `json:"secondary"`
		NoPrefixRoute bool   `json:"noprefixroute"`
		Tentative     bool   `json:"tentative"`
		Deprecated    bool   `json:"deprecated"`
	} `json:"addr_info"`
}

// checkAddrs compares the addresses of each device and family in order;
// ip groups them by device, the kernel dumps them by family first.
func checkAddrs(t *testing.T, n *nstest.NS, m *fib.Model) {
	var links []ipAddrLink
	ipJSON(t, n, &links, "addr", "show")
	want := make(map[string][]string)
	for _, l := range links {
		for _, a := range l.Addrs {
			local := netip.MustParseAddr(a.Local)
			var s string
			if a.Peer != "" && a.Peer != a.Local {
				s = fmt.Sprintf("%s peer %s/%d", netip.PrefixFrom(local, local.BitLen()), a.Peer, a.PrefixLen)
			} else {
				s = fmt.Sprintf("%s/%d", a.Local, a.PrefixLen)
			}
			s += fmt.Sprintf(" scope %s%s", a.Scope, addrFlags(a.Secondary, a.NoPrefixRoute, a.Tentative, a.Deprecated))
			k := l.Name + " " + a.Family
			want[k] = append(want[k], s)
		}
	}
	got := make(map[string][]string)
	for _, a := range m.State().Addrs {
		s := a.Prefix.String()
		if a.Peer.IsValid() {
			s += " peer " + a.Peer.String()
		}
		s += fmt.Sprintf(" scope %s%s", a.Scope, addrFlags(a.Secondary, a.NoPrefixRoute, a.Tentative, a.Deprecated))
		k := a.Link + " " + fib.FamilyOf(a.Prefix.Addr()).String()
		got[k] = append(got[k], s)
	}
	for k, w := range want {
		if !slices.Equal(got[k], w) {
			t.Errorf("%s addresses:\n got %q\nwant %q", k, got[k], w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s addresses %q, which ip does not show", k, g)
		}
	}
	// The world has one address of each flag.
	for _, f := range []func(fib.Address) bool{
		func(a fib.Address) bool { return a.Secondary },
		func(a fib.Address) bool { return a.NoPrefixRoute },
		func(a fib.Address) bool { return a.Tentative },
		func(a fib.Address) bool { return a.Deprecated },
		func(a fib.Address) bool { return a.Peer.IsValid() },
	} {
		if !slices.ContainsFunc(m.State().Addrs, f) {
			t.Errorf("no address with a flag the world sets: %+v", m.State().Addrs)
			break
		}
	}
}

func addrFlags(secondary, noPrefixRoute, tentative, deprecated bool) string {
	var s string
	for _, f := range []struct {
		set  bool
		name string
	}{{secondary, "secondary"}, {noPrefixRoute, "noprefixroute"}, {tentative, "tentative"}, {deprecated, "deprecated"}} {
		if f.set {
			s += " " + f.name
		}
	}
	return s
}

type ipNextHop struct {
	Gateway string `json:"gateway"`
	Via     struct {
		Host string `json:"host"`
	} `json:"via"`
	Dev    string   `json:"dev"`
	Weight int      `json:"weight"`
	Flags  []string `json:"flags"`
}

type ipRoute struct {
	ipNextHop
	Type     string      `json:"type"`
	Dst      string      `json:"dst"`
	From     string      `json:"from"`
	Table    string      `json:"table"`
	Protocol string      `json:"protocol"`
	Scope    string      `json:"scope"`
	PrefSrc  string      `json:"prefsrc"`
	Metric   uint32      `json:"metric"`
	TOS      string      `json:"tos"`
	NextHops []ipNextHop `json:"nexthops"`
}

// checkRoutes compares the routes of each family, in dump order.
func checkRoutes(t *testing.T, n *nstest.NS, m *fib.Model) {
	for _, f := range []fib.Family{fib.V4, fib.V6} {
		var routes []ipRoute
		flag := "-4"
		if f == fib.V6 {
			flag = "-6"
		}
		ipJSON(t, n, &routes, flag, "-d", "route", "show", "table", "all")
		var want []string
		for _, r := range routes {
			want = append(want, ipRouteText(t, f, r))
		}
		var got []string
		for _, r := range m.State().Routes {
			if r.Family == f {
				got = append(got, routeText(r))
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s routes:\n got %s\nwant %s", f, strings.Join(got, "\n     "), strings.Join(want, "\n     "))
		}
	}
	if !slices.ContainsFunc(m.State().Routes, func(r fib.Route) bool { return r.Src.IsValid() }) {
		t.Error("no route with a source prefix")
	}
}

func routeText(r fib.Route) string {
	s := fmt.Sprintf("%s %s from %s table %s proto %s scope %s src %s metric %d tos %#x",
		r.Type, r.Dst, r.Src, r.Table, r.Protocol, r.Scope, r.PrefSrc, r.Metric, r.TOS)
	for _, nh := range r.NextHops {
		s += fmt.Sprintf(" | via %s dev %s", nh.Gateway, nh.Link)
		if len(r.NextHops) > 1 {
			s += fmt.Sprintf(" weight %d", nh.Weight)
		}
		for _, fl := range []struct {
			set  bool
			name string
		}{{nh.Dead, "dead"}, {nh.OnLink, "onlink"}, {nh.LinkDown, "linkdown"}} {
			if fl.set {
				s += " " + fl.name
			}
		}
	}
	return s
}

func ipRouteText(t *testing.T, f fib.Family, r ipRoute) string {
	t.Helper()
	bits := 32
	if f == fib.V6 {
		bits = 128
	}
	dst := r.Dst
	switch {
	case dst == "default" && f == fib.V4:
		dst = "0.0.0.0/0"
	case dst == "default":
		dst = "::/0"
	case !strings.Contains(dst, "/"):
		dst = fmt.Sprintf("%s/%d", dst, bits)
	}
	var from netip.Prefix
	if r.From != "" {
		from = netip.MustParsePrefix(r.From)
	}
	prefsrc := netip.Addr{}
	if r.PrefSrc != "" {
		prefsrc = netip.MustParseAddr(r.PrefSrc)
	}
	var tos uint64
	if r.TOS != "" {
		var err error
		if tos, err = strconv.ParseUint(strings.TrimPrefix(r.TOS, "0x"), 16, 8); err != nil {
			t.Fatalf("tos %q: %v", r.TOS, err)
		}
	}
	s := fmt.Sprintf("%s %s from %s table %s proto %s scope %s src %s metric %d tos %#x",
		r.Type, dst, from, r.Table, r.Protocol, r.Scope, prefsrc, r.Metric, tos)
	hops := r.NextHops
	if len(hops) == 0 && (r.Dev != "" || r.Gateway != "" || r.Via.Host != "") {
		hops = []ipNextHop{r.ipNextHop}
	}
	for _, nh := range hops {
		gw := nh.Gateway
		if gw == "" {
			gw = nh.Via.Host
		}
		if gw == "" {
			gw = "invalid IP"
		}
		s += fmt.Sprintf(" | via %s dev %s", gw, nh.Dev)
		if len(hops) > 1 {
			s += fmt.Sprintf(" weight %d", nh.Weight)
		}
		for _, fl := range []string{"dead", "onlink", "linkdown"} {
			if slices.Contains(nh.Flags, fl) {
				s += " " + fl
			}
		}
	}
	return s
}

// checkRules compares the rules of each family, in order. ip prints
// most selectors only when set, so the JSON is read as a map.
func checkRules(t *testing.T, n *nstest.NS, m *fib.Model) {
	for _, f := range []fib.Family{fib.V4, fib.V6} {
		var rules []map[string]any
		flag := "-4"
		if f == fib.V6 {
			flag = "-6"
		}
		ipJSON(t, n, &rules, flag, "rule", "show")
		var want []string
		for _, r := range rules {
			want = append(want, ipRuleText(t, r))
		}
		var got []string
		for _, r := range m.State().Rules {
			if r.Family == f {
				got = append(got, ruleText(r))
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s rules:\n got %s\nwant %s", f, strings.Join(got, "\n     "), strings.Join(want, "\n     "))
		}
	}
}

func ruleText(r fib.Rule) string {
	s := fmt.Sprintf("%d not %v from %s to %s iif %q oif %q mark %#x/%#x tos %#x ipproto %d sport %d-%d dport %d-%d",
		r.Priority, r.Not, r.Src, r.Dst, r.IIF, r.OIF, r.Mark, r.Mask, r.TOS, r.IPProto, r.SPort.Start, r.SPort.End, r.DPort.Start, r.DPort.End)
	if r.UIDs != nil {
		s += fmt.Sprintf(" uid %d-%d", r.UIDs.Start, r.UIDs.End)
	}
	s += fmt.Sprintf(" l3mdev %v %s table %s goto %d suppress %d/%d", r.L3MDev, r.Action, r.Table, r.Goto, r.SuppressPrefixLen, r.SuppressIfGroup)
	return s
}

func ipRuleText(t *testing.T, r map[string]any) string {
	t.Helper()
	str := func(k string) string { v, _ := r[k].(string); return v }
	num := func(k string) uint64 {
		switch v := r[k].(type) {
		case float64:
			return uint64(v)
		case string:
			n, err := strconv.ParseUint(v, 0, 64)
			if err != nil {
				t.Fatalf("rule %v: %s %q: %v", r["priority"], k, v, err)
			}
			return n
		}
		return 0
	}
	has := func(k string) bool { _, ok := r[k]; return ok }
	prefix := func(k string) netip.Prefix {
		a := str(k)
		if a == "" || a == "all" {
			return netip.Prefix{}
		}
		addr := netip.MustParseAddr(a)
		bits := addr.BitLen()
		if has(k + "len") {
			bits = int(num(k + "len"))
		}
		return netip.PrefixFrom(addr, bits)
	}
	portRange := func(k string) (uint64, uint64) {
		if has(k) {
			return num(k), num(k)
		}
		return num(k + "_start"), num(k + "_end")
	}
	mask := num("fwmask")
	if has("fwmark") && !has("fwmask") {
		mask = 0xffffffff
	}
	proto := map[string]uint64{"": 0, "tcp": unix.IPPROTO_TCP, "udp": unix.IPPROTO_UDP}[str("ipproto")]
	sStart, sEnd := portRange("sport")
	dStart, dEnd := portRange("dport")
	s := fmt.Sprintf("%d not %v from %s to %s iif %q oif %q mark %#x/%#x tos %#x ipproto %d sport %d-%d dport %d-%d",
		num("priority"), has("not"), prefix("src"), prefix("dst"), str("iif"), str("oif"), num("fwmark"), mask, num("tos"), proto, sStart, sEnd, dStart, dEnd)
	if has("uid_start") {
		s += fmt.Sprintf(" uid %d-%d", num("uid_start"), num("uid_end"))
	}
	action := str("action")
	switch {
	case has("nop"):
		action = "nop"
	case has("goto"):
		action = "goto"
	case action == "":
		action = "lookup"
	}
	table := fib.TableUnspec
	if str("table") != "" {
		var err error
		if table, err = fib.ParseTableID(str("table")); err != nil {
			t.Fatal(err)
		}
	}
	suppress := func(k string) int64 {
		if has(k) {
			return int64(num(k))
		}
		return -1
	}
	s += fmt.Sprintf(" l3mdev %v %s table %s goto %d suppress %d/%d", has("l3mdev"), action, table, num("goto"), suppress("suppress_prefixlen"), suppress("suppress_ifgroup"))
	return s
}

// checkConf compares the sysctls with what a program run inside the
// namespace reads.
func checkConf(t *testing.T, n *nstest.NS, m *fib.Model) {
	want := procConf(t, n)
	if fmt.Sprint(m.State().Conf) != fmt.Sprint(want) {
		t.Errorf("conf:\n got %+v\nwant %+v", m.State().Conf, want)
	}
	if !m.State().Conf["br0"].RouteLocalnet || m.State().Conf[fib.ConfAll].RPFilter != 2 || !m.State().Conf["va"].IgnoreRoutesWithLinkdown || !m.State().Conf["vb"].Forwarding {
		t.Errorf("conf %+v lacks the world's sysctls %v", m.State().Conf, worldSysctls)
	}
}

// TestUnmerged checks that the local and main tables count as merged in a
// new namespace and unmerged once a rule has been added and deleted, and
// that the kernel's answers change with it.
func TestUnmerged(t *testing.T) {
	n := nstest.NewWithLoUp(t)
	if err := n.Batch([]string{
		"link add br0 type bridge",
		"link set br0 up",
		"addr add 10.1.2.3/24 dev br0",
		"addr add 127.16.0.1/16 dev br0",
	}); err != nil {
		t.Fatal(err)
	}
	settle(t, n)
	tests := []struct {
		name     string
		unmerged bool
		// 127.16.0.5: while merged, main's 127.16.0.0/16 via br0 wins
		// the single longest-prefix match over local's 127.0.0.0/8, and
		// a loopback source on br0 is invalid; unmerged, local is
		// consulted first and its 127.0.0.0/8 delivers locally.
		localnet fib.Result
		// 10.1.2.3 is local either way, but reported from main's trie
		// while merged.
		local fib.Result
	}{
		{
			name:     "new",
			localnet: fib.Result{Err: unix.EINVAL},
			local:    fib.Result{Type: fib.TypeLocal, Table: fib.TableMain, Dev: "lo"},
		},
		{
			name:     "after rule add and del",
			unmerged: true,
			localnet: fib.Result{Type: fib.TypeLocal, Table: fib.TableLocal, Dev: "lo"},
			local:    fib.Result{Type: fib.TypeLocal, Table: fib.TableLocal, Dev: "lo"},
		},
	}
	for i, tt := range tests {
		if i == 1 {
			if err := n.Batch([]string{"rule add pref 100 from 1.2.3.4 lookup 100", "rule del pref 100"}); err != nil {
				t.Fatal(err)
			}
		}
		t.Run(tt.name, func(t *testing.T) {
			m, err := Load(n.Name())
			if err != nil {
				t.Fatal(err)
			}
			if m.Unmerged() != tt.unmerged {
				t.Errorf("Unmerged = %v, want %v", m.Unmerged(), tt.unmerged)
			}
			for dst, want := range map[string]fib.Result{"127.16.0.5": tt.localnet, "10.1.2.3": tt.local} {
				res, err := RouteGet(n.Name(), fib.Query{Dst: netip.MustParseAddr(dst)})
				if err != nil {
					t.Fatal(err)
				}
				if res.Err != want.Err || res.Type != want.Type || res.Table != want.Table || res.Dev != want.Dev {
					t.Errorf("route get %s = %s table %s, want %s table %s", dst, res.String(), res.Table, want.String(), want.Table)
				}
			}
		})
	}
}

func TestUnmergedFromTrie(t *testing.T) {
	merged := "Main:\n  |-- 127.0.0.1\n     /32 host LOCAL\nLocal:\n  |-- 127.0.0.1\n     /32 host LOCAL\n"
	custom := append(fib.DefaultRules(fib.V4), fib.Rule{Family: fib.V4, Priority: 5, Action: fib.ActionLookup, Table: 5})
	tests := []struct {
		name  string
		trie  string
		rules []fib.Rule
		want  bool
	}{
		{"identical sections", merged, custom, false},
		{"local only", "Local:\n  |-- 127.0.0.1\n     /32 host LOCAL\n", nil, true},
		{"different sections", "Id 100:\n  |-- 10.0.0.0\n     /8 link UNICAST\n" + strings.Replace(merged, "Main:\n  |-- 127.0.0.1\n     /32 host LOCAL\n", "Main:\n  |-- 10.0.0.0\n     /8 link UNICAST\n", 1), nil, true},
		{"empty, default rules", "", fib.DefaultRules(fib.V4), false},
		{"empty, IPv6 rule only", "", append(fib.DefaultRules(fib.V4), fib.Rule{Family: fib.V6, Priority: 5, Action: fib.ActionNop}), false},
		{"empty, custom rule", "", custom, true},
		{"main only, default rules", "Main:\n  |-- 10.0.0.0\n     /8 link UNICAST\n", fib.DefaultRules(fib.V4), false},
		{"main only, no rules", "Main:\n  |-- 10.0.0.0\n     /8 link UNICAST\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := unmerged([]byte(tt.trie), tt.rules); got != tt.want {
				t.Errorf("unmerged = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRouteGet(t *testing.T) {
	n := newWorld(t)
	addr := netip.MustParseAddr
	tests := []struct {
		q    fib.Query
		want fib.Result
	}{
		{fib.Query{Dst: addr("10.1.2.3")}, fib.Result{Type: fib.TypeLocal, Table: fib.TableLocal, Dev: "lo", PrefSrc: addr("10.1.2.3")}},
		{fib.Query{Dst: addr("10.1.2.77")}, fib.Result{Type: fib.TypeUnicast, Table: fib.TableMain, Dev: "br0", PrefSrc: addr("10.1.2.3")}},
		// va has no carrier and ignore_routes_with_linkdown.
		{fib.Query{Dst: addr("10.60.1.1")}, fib.Result{Err: unix.ENETUNREACH}},
		{fib.Query{Dst: addr("10.95.1.1")}, fib.Result{Type: fib.TypeUnicast, Table: fib.TableMain, Dev: "br0", Gateway: addr("fe80::1"), PrefSrc: addr("10.1.2.3")}},
		{fib.Query{Dst: addr("127.16.0.5")}, fib.Result{Type: fib.TypeLocal, Table: fib.TableLocal, Dev: "lo", PrefSrc: addr("127.0.0.1")}},
		{fib.Query{Dst: addr("10.9.1.1")}, fib.Result{Err: unix.EHOSTUNREACH}},
		{fib.Query{Dst: addr("8.8.8.8")}, fib.Result{Err: unix.ENETUNREACH}},
		{fib.Query{Dst: addr("10.1.2.3"), IIF: "br0"}, fib.Result{Err: unix.EINVAL}},
		{fib.Query{Dst: addr("10.1.2.3"), IIF: "br0", Src: addr("10.1.2.99")}, fib.Result{Type: fib.TypeLocal, Table: fib.TableLocal, Dev: "lo"}},
		{fib.Query{Dst: addr("10.1.2.3"), IIF: "nosuch", Src: addr("10.1.2.99")}, fib.Result{Err: unix.ENODEV}},
		// No route through va matches: the kernel assumes the
		// destination is on va's link, from no table.
		{fib.Query{Dst: addr("10.1.2.77"), OIF: "va"}, fib.Result{Type: fib.TypeUnicast, Dev: "va", PrefSrc: addr("10.2.0.1")}},
		// Rule 1000: not from 10.1.2.0/24 to 10.50.0.0/16 lookup 100.
		{fib.Query{Dst: addr("10.50.0.1"), Src: addr("10.2.0.1")}, fib.Result{Type: fib.TypeUnicast, Table: 100, Dev: "br0"}},
		{fib.Query{Dst: addr("10.50.0.1"), Src: addr("10.1.2.3")}, fib.Result{Err: unix.ENETUNREACH}},
		// Rules 1002, 1004, 1005: blackhole, unreachable, prohibit. An
		// unreachable rule gives ENETUNREACH, an unreachable route
		// EHOSTUNREACH.
		{fib.Query{Dst: addr("8.8.8.8"), TOS: 0x10}, fib.Result{Err: unix.EINVAL}},
		{fib.Query{Dst: addr("8.8.8.8"), Mark: 0x20}, fib.Result{Err: unix.ENETUNREACH}},
		{fib.Query{Dst: addr("8.8.8.8"), Mark: 0x30}, fib.Result{Err: unix.EACCES}},
		// Rule 1007: fwmark 0x40/0xff ipproto udp dport 53 lookup 200.
		{fib.Query{Dst: addr("10.90.0.1"), Mark: 0x140, IPProto: unix.IPPROTO_UDP, DPort: 53}, fib.Result{Type: fib.TypeUnicast, Table: 200, Dev: "br0", PrefSrc: addr("10.1.2.3")}},
		{fib.Query{Dst: addr("10.90.0.1"), Mark: 0x140, IPProto: unix.IPPROTO_UDP, DPort: 54}, fib.Result{Err: unix.ENETUNREACH}},
		{fib.Query{Dst: addr("10.90.0.1"), Mark: 0x140, IPProto: unix.IPPROTO_TCP, DPort: 53, SPort: 999}, fib.Result{Err: unix.ENETUNREACH}},
		// Rule 1008: uidrange 1000-1000 lookup 300.
		{fib.Query{Dst: addr("10.91.0.1"), UID: 1000}, fib.Result{Type: fib.TypeUnicast, Table: 300, Dev: "br0", PrefSrc: addr("10.1.2.3")}},
		{fib.Query{Dst: addr("10.91.0.1")}, fib.Result{Err: unix.ENETUNREACH}},
		{fib.Query{Dst: addr("::1")}, fib.Result{Type: fib.TypeLocal, Table: fib.TableLocal, Dev: "lo", PrefSrc: addr("::1")}},
		{fib.Query{Dst: addr("2001:db8:1::5")}, fib.Result{Type: fib.TypeUnicast, Table: fib.TableMain, Dev: "br0", PrefSrc: addr("2001:db8:1::1")}},
		{fib.Query{Dst: addr("2001:db8:2::1"), Src: addr("2001:db8:1::1")}, fib.Result{Type: fib.TypeUnicast, Table: fib.TableMain, Dev: "br0", Gateway: addr("2001:db8:1::ff"), PrefSrc: addr("2001:db8:1::1")}},
		{fib.Query{Dst: addr("2001:db8:2::1")}, fib.Result{Err: unix.ENETUNREACH}},
		{fib.Query{Dst: addr("2001:db8:9::1")}, fib.Result{Err: unix.EHOSTUNREACH}},
	}
	for _, tt := range tests {
		t.Run(queryArgs(tt.q), func(t *testing.T) {
			got, err := RouteGet(n.Name(), tt.q)
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Dst = tt.q.Dst
			if !sameAnswer(got, tt.want) {
				t.Errorf("got  %s (table %s, prefsrc %s)\nwant %s (table %s, prefsrc %s)", got.String(), got.Table, got.PrefSrc, tt.want.String(), tt.want.Table, tt.want.PrefSrc)
			}
			if tt.q.IIF == "nosuch" {
				return
			}
			if ip := ipRouteGet(t, n, tt.q); !sameAnswer(got, ip) {
				t.Errorf("ip route get %s: %s (table %s), RouteGet: %s (table %s)", queryArgs(tt.q), ip.String(), ip.Table, got.String(), got.Table)
			}
		})
	}
	if _, err := RouteGet("fgt-no-such-namespace", fib.Query{Dst: addr("10.1.2.3")}); err == nil {
		t.Error("RouteGet in a missing namespace succeeded")
	}
}

func sameAnswer(a, b fib.Result) bool {
	return a.Dst == b.Dst && a.Err == b.Err && a.Type == b.Type && a.Table == b.Table &&
		a.Dev == b.Dev && a.Gateway == b.Gateway && a.PrefSrc == b.PrefSrc
}

// queryArgs writes a query as `ip route get` arguments.
func queryArgs(q fib.Query) string {
	args := []string{q.Dst.String()}
	add := func(set bool, k string, v any) {
		if set {
			args = append(args, k, fmt.Sprint(v))
		}
	}
	add(q.Src.IsValid(), "from", q.Src)
	add(q.IIF != "", "iif", q.IIF)
	add(q.OIF != "", "oif", q.OIF)
	add(q.Mark != 0, "mark", fmt.Sprintf("%#x", q.Mark))
	add(q.TOS != 0, "tos", fmt.Sprintf("%#x", q.TOS))
	add(q.IPProto != 0, "ipproto", q.IPProto)
	add(q.SPort != 0, "sport", q.SPort)
	add(q.DPort != 0, "dport", q.DPort)
	add(q.UID != 0, "uid", q.UID)
	return strings.Join(args, " ")
}

// ipRouteGet asks `ip -j route get` the same question.
func ipRouteGet(t *testing.T, n *nstest.NS, q fib.Query) fib.Result {
	t.Helper()
	res := fib.Result{Dst: q.Dst}
	cmd := exec.Command("ip", append([]string{"-n", n.Name(), "-j", "-d", "route", "get"}, strings.Fields(queryArgs(q))...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg, ok := strings.CutPrefix(strings.TrimSpace(stderr.String()), "RTNETLINK answers: ")
		if !ok {
			t.Fatalf("ip route get %s: %v: %s", queryArgs(q), err, stderr.String())
		}
		for e := syscall.Errno(1); e < 200; e++ {
			if strings.EqualFold(e.Error(), msg) {
				res.Err = e
				return res
			}
		}
		t.Fatalf("ip route get %s: unknown error %q", queryArgs(q), msg)
	}
	var routes []ipRoute
	if err := json.Unmarshal(out, &routes); err != nil || len(routes) != 1 {
		t.Fatalf("ip -j route get %s: %v: %s", queryArgs(q), err, out)
	}
	r := routes[0]
	typ := "unicast"
	if r.Type != "" {
		typ = r.Type
	}
	var err2 error
	if res.Type, err2 = fib.ParseRouteType(typ); err2 != nil {
		t.Fatal(err2)
	}
	if r.Table != "" {
		if res.Table, err2 = fib.ParseTableID(r.Table); err2 != nil {
			t.Fatal(err2)
		}
	}
	res.Dev = r.Dev
	gw := r.Gateway
	if gw == "" {
		gw = r.Via.Host
	}
	if gw != "" {
		res.Gateway = netip.MustParseAddr(gw)
	}
	if r.PrefSrc != "" {
		res.PrefSrc = netip.MustParseAddr(r.PrefSrc)
	}
	return res
}

// procConf reads net.ipv4.conf.*.{route_localnet,forwarding,rp_filter,
// ignore_routes_with_linkdown} with a program run inside the namespace,
// as the files say (not as the link dump does).
func procConf(t *testing.T, n *nstest.NS) map[string]fib.DevConf {
	t.Helper()
	out, err := n.Exec("sh", "-c", "cd /proc/sys/net/ipv4/conf && grep -H . */route_localnet */forwarding */rp_filter */ignore_routes_with_linkdown")
	if err != nil {
		t.Fatal(err)
	}
	want := make(map[string]fib.DevConf)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		dev, rest, _ := strings.Cut(line, "/")
		key, val, _ := strings.Cut(rest, ":")
		if dev == "default" {
			continue
		}
		v, err := strconv.Atoi(val)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		c := want[dev]
		switch key {
		case "route_localnet":
			c.RouteLocalnet = v != 0
		case "forwarding":
			c.Forwarding = v != 0
		case "rp_filter":
			c.RPFilter = v
		case "ignore_routes_with_linkdown":
			c.IgnoreRoutesWithLinkdown = v != 0
		}
		want[dev] = c
	}
	return want
}

// TestConfRandom checks, on random setups of internal/netgen (which set
// route_localnet, forwarding, rp_filter and more per device), that the
// sysctls Load and LoadFor take from the link dump are the files' values.
func TestConfRandom(t *testing.T) {
	for seed := range uint64(12) {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			setup := netgen.New(seed)
			n := nstest.New(t)
			if err := setup.Apply(n); err != nil {
				t.Fatal(err)
			}
			want := procConf(t, n)
			m, err := Load(n.Name())
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(m.State().Conf) != fmt.Sprint(want) {
				t.Errorf("Load's conf:\n got %+v\nwant %+v\n%s", m.State().Conf, want, setup.Script("x"))
			}
			p, err := LoadFor(n.Name(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(p.State().Conf) != fmt.Sprint(want) {
				t.Errorf("LoadFor's conf:\n got %+v\nwant %+v\n%s", p.State().Conf, want, setup.Script("x"))
			}
		})
	}
}
