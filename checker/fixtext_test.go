package checker

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/internal/examplenode"
)

// findingOf returns the finding with the code, failing the test without one.
func findingOf(t *testing.T, fs []Finding, c Code) Finding {
	t.Helper()
	for _, f := range fs {
		if f.Code == c {
			return f
		}
	}
	t.Fatalf("no %s among %+v", c, fs)
	return Finding{}
}

// divertRule sends 10.244.0.0/16 to table 100, which routes it out eth0.
func divertRule() []fib.Change {
	return []fib.Change{
		fib.AddRule{Rule: fib.Rule{Priority: 100, Dst: netip.MustParsePrefix("10.244.0.0/16"), Action: fib.ActionLookup, Table: 100, SuppressPrefixLen: -1, SuppressIfGroup: -1}},
		route(fib.Route{Table: 100, Dst: netip.MustParsePrefix("10.244.0.0/16"), NextHops: []fib.NextHop{{Link: "eth0", Gateway: netip.MustParseAddr("10.0.0.1")}}}),
	}
}

// TestFixAddressesCause checks that a fix names what causes the finding:
// a ptp pod has a device of its own, so no single route for the pod
// network in another table can replace the exemption; a 127.x gateway is
// refused for its loopback source, which no route fixes.
func TestFixAddressesCause(t *testing.T) {
	t.Run("FG005 ptp", func(t *testing.T) {
		host := apply(t, examplenode.Typical(), link("veth1", fib.KindVeth), addr("veth1", "10.244.0.1/32"),
			route(fib.Route{Dst: netip.MustParsePrefix("10.244.0.5/32"), Scope: fib.ScopeHost, NextHops: []fib.NextHop{{Link: "veth1"}}}))
		apply(t, host, divertRule()...)
		f := findingOf(t, Check(Input{Host: host, Result: ptpResult(t, "10.244.0.5/24 10.244.0.1")}, Options{}), CodePolicyRule)
		if strings.Contains(f.Fix, "through veth1 in table") || !strings.Contains(f.Fix, "ip rule add pref 99 to 10.244.0.0/24 lookup main") || !strings.Contains(f.Fix, "veth1") {
			t.Errorf("fix %q: want the exemption and the per-pod device, no route of the pod network through one veth", f.Fix)
		}
	})
	t.Run("FG005 bridge", func(t *testing.T) {
		host := apply(t, bridgeHost(t, "10.244.0.1/24"), divertRule()...)
		f := findingOf(t, Check(Input{Host: host, Result: bridgeResult(t, "10.244.0.5/24 10.244.0.1")}, Options{}), CodePolicyRule)
		if want := "or route 10.244.0.0/24 through cni0 in table 100"; !strings.Contains(f.Fix, want) {
			t.Errorf("fix %q lacks %q", f.Fix, want)
		}
		// The trace has the rule as `ip rule` prints it, but with a space
		// after the priority: a finding holds no tab.
		if trace := strings.Join(f.Trace, "\n"); !strings.Contains(trace, "rule 100: from all to 10.244.0.0/16 lookup 100") || strings.ContainsRune(trace, '\t') {
			t.Errorf("trace without the rule, or with a tab:\n%s", trace)
		}
	})
	t.Run("FG010 loopback gateway", func(t *testing.T) {
		res := bridgeResult(t, "127.16.0.2/16 127.16.0.1")
		res.Routes = defaultRoutes("127.16.0.1")
		f := findingOf(t, Check(Input{Pod: podModel(t, []string{"127.16.0.2/16"}, "127.16.0.1"), Result: res}, Options{}), CodeGateway)
		if strings.Contains(f.Fix, "ip route add") || !strings.Contains(f.Fix, "source 127.16.0.2 is a loopback address") {
			t.Errorf("fix %q: want the loopback source named, no route to add", f.Fix)
		}
	})
}
