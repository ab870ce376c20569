//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/fibguard/fibguard/podevent"
)

// agentMetrics is where the DaemonSet's agent serves its metrics, on the
// node (host network).
const agentMetrics = "http://127.0.0.1:9743/metrics"

// agentDeadline is how soon after a change of the node the agent's Event
// must be there: the "within 10 s".
const agentDeadline = 10 * time.Second

// agentCatchesBreaks: the node agent of the DaemonSet watches pods that
// already run. Pod healthy-a (scenario 2) is fine; the node gains its IP
// as an address → a Warning PodNetworkBroken on the pod naming FG002 and
// the change, the broken gauge at 1; the address goes → a Normal
// PodNetworkRestored, the gauge at 0; a more specific route steals the
// IP → broken again (FG003, the same Event counting up); and node-wide,
// a 127.x pod network configured on the node → a Warning on the Node
// (FG050), gone once the healthy network is back.
func agentCatchesBreaks(ctx context.Context, t *testing.T, cl *cluster, _ installer) {
	if cl.Install != "manifests" {
		t.Skipf("FIBGUARD_E2E_INSTALL=%s: the node agent runs in the DaemonSet only", cl.Install)
	}
	pod, err := cl.client.CoreV1().Pods(cl.ns).Get(ctx, "healthy-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ip, err := netip.ParseAddr(pod.Status.PodIP)
	if err != nil {
		t.Fatalf("pod healthy-a: IP %q: %v", pod.Status.PodIP, err)
	}
	cl.waitMetrics(ctx, t, "the agent sees the running pods, all fine, and the installation ready", map[string]func(float64) bool{
		`fibguard_pod_networks{state="ok"}`:     atLeast(2),
		`fibguard_pod_networks{state="broken"}`: equal(0),
		`fibguard_node_network_broken`:          equal(0),
		`fibguard_install_ready`:                equal(1),
	})
	dev := cl.uplink(ctx, t)

	host := ip.String() + "/32"
	cl.breakAndRestore(ctx, t, pod, "address "+host+" on "+dev, "FG002", "address "+host+" added on "+dev, 1,
		"ip addr add "+host+" dev "+dev, "ip addr del "+host+" dev "+dev)
	cl.breakAndRestore(ctx, t, pod, "route "+host+" dev "+dev, "FG003", "route "+ip.String(), 2,
		"ip route add "+host+" dev "+dev, "ip route del "+host+" dev "+dev)

	node, err := cl.client.CoreV1().Nodes().Get(ctx, cl.Node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cl.writePrimary(ctx, loopbackNetwork().conflist(cl.IPAMDir)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cl.switchNetwork(context.Background(), cl.healthyNetwork(), true); err != nil {
			t.Errorf("restoring the healthy network: %v", err)
		}
	})
	e := cl.waitAgentEvent(ctx, t, nodeEvents(node), podevent.ReasonBroken, "FG050", start, 0)
	if e.Type != corev1.EventTypeWarning {
		t.Errorf("the Node's %s Event is %s, want Warning", e.Reason, e.Type)
	}
	t.Logf("a 127.x pod network on the node: %s %s on the Node after %v: %s", e.Type, e.Reason, time.Since(start).Round(time.Millisecond), e.Message)
	cl.waitMetrics(ctx, t, "the node gauge at 1", map[string]func(float64) bool{`fibguard_node_network_broken`: equal(1)})
	start = time.Now()
	if err := cl.switchNetwork(ctx, cl.healthyNetwork(), true); err != nil {
		t.Fatal(err)
	}
	e = cl.waitAgentEvent(ctx, t, nodeEvents(node), podevent.ReasonRestored, "", start, 0)
	if e.Type != corev1.EventTypeNormal {
		t.Errorf("the Node's %s Event is %s, want Normal", e.Reason, e.Type)
	}
	t.Logf("the healthy network back: %s %s on the Node after %v", e.Type, e.Reason, time.Since(start).Round(time.Millisecond))
	cl.waitMetrics(ctx, t, "the node gauge at 0", map[string]func(float64) bool{`fibguard_node_network_broken`: equal(0)})
}

// breakAndRestore runs breakIt on the node, waits for the pod's Warning
// PodNetworkBroken naming code and change (the count-th of the series) and
// the broken gauge at 1, then runs fix and waits for PodNetworkRestored
// and the gauge at 0. fix also runs at the end of the test if it failed.
func (cl *cluster) breakAndRestore(ctx context.Context, t *testing.T, pod *corev1.Pod, what, code, change string, times int32, breakIt, fix string) {
	t.Helper()
	start := time.Now()
	if _, err := cl.onNode(ctx, nil, breakIt); err != nil {
		t.Fatal(err)
	}
	fixed := false
	t.Cleanup(func() {
		if !fixed {
			_, _ = cl.onNode(context.Background(), nil, fix+" 2>/dev/null; true") // best effort: the test failed already
		}
	})
	e := cl.waitAgentEvent(ctx, t, podEventsOf(cl.ns, pod), podevent.ReasonBroken, code, start, times)
	if e.Type != corev1.EventTypeWarning || !strings.Contains(e.Message, change) || count(e) != times {
		t.Errorf("after %s: %s %s x%d %q; want Warning x%d naming %q", what, e.Type, e.Reason, count(e), e.Message, times, change)
	}
	t.Logf("%s: %s %s x%d after %v: %s", what, e.Type, e.Reason, count(e), time.Since(start).Round(time.Millisecond), e.Message)
	cl.waitMetrics(ctx, t, "the broken gauge at 1", map[string]func(float64) bool{`fibguard_pod_networks{state="broken"}`: equal(1)})

	start = time.Now()
	if _, err := cl.onNode(ctx, nil, fix); err != nil {
		t.Fatal(err)
	}
	fixed = true
	e = cl.waitAgentEvent(ctx, t, podEventsOf(cl.ns, pod), podevent.ReasonRestored, "", start, times)
	if e.Type != corev1.EventTypeNormal || count(e) != times {
		t.Errorf("after removing the %s: %s %s x%d, want Normal x%d", what, e.Type, e.Reason, count(e), times)
	}
	t.Logf("%s removed: %s %s x%d after %v: %s", what, e.Type, e.Reason, count(e), time.Since(start).Round(time.Millisecond), e.Message)
	cl.waitMetrics(ctx, t, "the broken gauge at 0", map[string]func(float64) bool{`fibguard_pod_networks{state="broken"}`: equal(0)})
}

// eventQuery selects the Events about one object: its namespace and a
// field selector.
type eventQuery struct{ namespace, selector, what string }

func podEventsOf(ns string, pod *corev1.Pod) eventQuery {
	return eventQuery{ns, fields.Set{"involvedObject.kind": "Pod", "involvedObject.uid": string(pod.UID)}.String(), "pod " + pod.Name}
}

func nodeEvents(node *corev1.Node) eventQuery {
	return eventQuery{podevent.NodeEventNamespace, fields.Set{"involvedObject.kind": "Node", "involvedObject.uid": string(node.UID)}.String(), "node " + node.Name}
}

// waitAgentEvent waits, at most agentDeadline, for fibguard's one Event of
// reason about q's object, last seen at or after since (the API keeps
// seconds), counted at least minCount times, and naming code; a second
// series of the same reason fails.
func (cl *cluster) waitAgentEvent(ctx context.Context, t *testing.T, q eventQuery, reason, code string, since time.Time, minCount int32) corev1.Event {
	t.Helper()
	since = since.Truncate(time.Second)
	var found corev1.Event
	err := eventually(ctx, 200*time.Millisecond, agentDeadline, func(ctx context.Context) error {
		list, err := cl.client.CoreV1().Events(q.namespace).List(ctx, metav1.ListOptions{FieldSelector: q.selector})
		if err != nil {
			return err
		}
		ours := fibguardEvents(list.Items, reason)
		if len(ours) > 1 {
			return stop(fmt.Errorf("%d fibguard %s Events, want one series", len(ours), reason))
		}
		if len(ours) == 0 || ours[0].LastTimestamp.Time.Before(since) || count(ours[0]) < minCount || !strings.Contains(ours[0].Message, code) {
			return fmt.Errorf("no new %s Event naming %q yet (%d series)", reason, code, len(ours))
		}
		found = ours[0]
		return nil
	})
	if err != nil {
		t.Fatalf("fibguard's %s Event on %s within %v: %v", reason, q.what, agentDeadline, err)
	}
	return found
}

// waitMetrics waits until every series of want satisfies its condition
// in the agent's metrics.
func (cl *cluster) waitMetrics(ctx context.Context, t *testing.T, what string, want map[string]func(float64) bool) {
	t.Helper()
	err := eventually(ctx, 200*time.Millisecond, agentDeadline, func(ctx context.Context) error {
		body, err := cl.onNode(ctx, nil, "curl -sS --max-time 5 "+agentMetrics)
		if err != nil {
			return err
		}
		got := parseMetrics(body)
		for series, ok := range want {
			v, seen := got[series]
			if !seen || !ok(v) {
				return fmt.Errorf("%s = %v (served: %v)", series, v, seen)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// parseMetrics reads Prometheus's text format: series to value.
func parseMetrics(body string) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

func equal(want float64) func(float64) bool  { return func(v float64) bool { return v == want } }
func atLeast(min float64) func(float64) bool { return func(v float64) bool { return v >= min } }

// uplink is the device of the node's default route.
func (cl *cluster) uplink(ctx context.Context, t *testing.T) string {
	t.Helper()
	dev, err := cl.onNode(ctx, nil, "ip -o -4 route show default | awk '{for (i = 1; i < NF; i++) if ($i == \"dev\") print $(i+1)}' | head -n1")
	if err != nil || strings.TrimSpace(dev) == "" {
		t.Fatalf("the node's default route device: %q %v", dev, err)
	}
	return strings.TrimSpace(dev)
}
