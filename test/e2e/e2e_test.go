//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestE2E runs the scenarios in order: each leaves the node in the state the
// next one starts from (which network is primary, whether fibguard is
// chained), as an operator's day would.
func TestE2E(t *testing.T) {
	cfg, err := loadConfig()
	if errors.Is(err, errNoCluster) {
		t.Skipf("no cluster for the e2e suite: %v", err)
	}
	if err != nil {
		t.Fatalf("e2e configuration: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cl, err := newCluster(ctx, cfg)
	if err != nil {
		t.Fatalf("cluster: %v", err)
	}
	for _, n := range cl.all {
		n.createNamespace(ctx, t)
	}
	inst := cl.installer(t)
	t.Cleanup(func() {
		// Leave the nodes as the suite found them: fibguard out, the healthy
		// network primary, no shadow route, no test pods.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		inst.uninstall(ctx, t)
		for _, n := range cl.all {
			if _, err := n.onNode(ctx, nil, "ip route del "+shadowRoute+" 2>/dev/null; true"); err != nil {
				t.Errorf("node %s: removing the shadow route: %v", n.Node, err)
			}
			if err := n.writePrimary(ctx, n.healthyNetwork().conflist(n.IPAMDir)); err != nil {
				t.Errorf("node %s: restoring the healthy network: %v", n.Node, err)
			}
			if err := n.client.CoreV1().Namespaces().Delete(ctx, n.ns, metav1.DeleteOptions{}); err != nil {
				t.Errorf("deleting namespace %s: %v", n.ns, err)
			}
		}
	})

	// A scenario perNode runs on every node under test in turn (a subtest
	// per node when there are several); the others install, upgrade or
	// uninstall fibguard once for the whole cluster, as its DaemonSet
	// does, and check every node themselves.
	steps := []struct {
		name    string
		perNode bool
		run     func(context.Context, *testing.T, *cluster, installer)
	}{
		{"1-silent-failure-without-fibguard", true, silentFailure},
		{"2-install-healthy-network", false, healthyWithFibguard},
		{"2b-primary-rewrites-its-conflist", true, primaryRewrite},
		{"2c-agent-catches-breaks-after-setup", true, agentCatchesBreaks},
		{"3-loopback-network-rejected", true, loopbackRejected},
		{"4a-node-address-rejected", true, nodeAddressRejected},
		{"4b-shadowed-subnet-rejected", true, shadowedRejected},
		{"7-delete-rejected-pods", true, deleteRejected},
		{"8-kubelet-and-runtime-restarted", true, restartNode},
		{"9-upgrade-while-pods-start", false, upgrade},
		{"5-warn-mode", false, warnMode},
		{"6-uninstall", false, uninstall},
		{"10-helm-chart", false, helmInstall},
	}
	for _, s := range steps {
		ok := t.Run(s.name, func(t *testing.T) {
			if !s.perNode {
				s.run(ctx, t, cl, inst)
				return
			}
			cl.eachNode(t, func(t *testing.T, n *cluster) { s.run(ctx, t, n, inst) })
		})
		if !ok {
			t.Logf("%s failed: the later scenarios start from an unknown state", s.name)
		}
	}
}

// silentFailure: the problem fibguard exists for. Without it, a pod on a
// bridge in 127.16.0.0/16 is Running, with a 127.16.x address, and nothing
// on the node reaches it: the node delivers 127.x to itself.
func silentFailure(ctx context.Context, t *testing.T, cl *cluster, inst installer) {
	inst.uninstall(ctx, t)
	if err := cl.switchNetwork(ctx, loopbackNetwork(), false); err != nil {
		t.Fatal(err)
	}
	cl.createProbe(ctx, t, "silent")
	ip := cl.waitRunning(ctx, t, "silent")
	if !loopbackNetwork().Subnet.Contains(ip) {
		t.Fatalf("pod silent got %s, want an address in %s", ip, loopbackNetwork().Subnet)
	}
	err := cl.reachable(ctx, "silent", ip)
	if err == nil {
		t.Fatalf("pod silent at %s is reachable from the node: the silent failure did not happen", ip)
	}
	t.Logf("pod silent is Running at %s and unreachable from the node: %v", ip, err)
	cl.deletePod(ctx, t, "silent")
}

// healthyWithFibguard: fibguard chained into a healthy network changes
// nothing for the pods: Running, reachable from the node and from each
// other, on every node.
func healthyWithFibguard(ctx context.Context, t *testing.T, cl *cluster, inst installer) {
	for _, n := range cl.all {
		if err := n.switchNetwork(ctx, n.healthyNetwork(), false); err != nil {
			t.Fatal(err)
		}
	}
	inst.install(ctx, t, "enforce")
	cl.eachNode(t, func(t *testing.T, cl *cluster) {
		if missing, err := cl.installedFiles(ctx, true); err != nil || len(missing) > 0 {
			t.Fatalf("after install the node lacks %v (err %v)", missing, err)
		}
		// The runtime must have loaded the chain with fibguard before pods come.
		if err := cl.switchNetwork(ctx, cl.healthyNetwork(), true); err != nil {
			t.Fatal(err)
		}
		cl.createProbe(ctx, t, "healthy-a")
		cl.createProbe(ctx, t, "healthy-b")
		a := cl.waitRunning(ctx, t, "healthy-a")
		b := cl.waitRunning(ctx, t, "healthy-b")
		if err := cl.reachable(ctx, "healthy-a", a); err != nil {
			t.Errorf("node → pod: %v", err)
		}
		if err := cl.reachableFrom(ctx, a, "healthy-b", b); err != nil {
			t.Errorf("pod → pod: %v", err)
		}
		evs, err := cl.podEvents(ctx, "healthy-a")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.ReportingController == "fibguard" || e.Source.Component == "fibguard" {
				t.Errorf("fibguard posted an Event about a healthy pod: %s %s", e.Reason, e.Message)
			}
		}
	})
}

// rejected asserts what an operator sees for a refused pod: it stays in
// ContainerCreating, fibguard's Warning Event names the check, kubelet's
// FailedCreatePodSandBox carries fibguard's message, and kubelet's retries
// count up one Event series.
func rejected(ctx context.Context, t *testing.T, cl *cluster, pod, code string) {
	t.Helper()
	cl.createProbe(ctx, t, pod)
	r := cl.waitEvent(ctx, t, pod, "PodNetworkRejected", code, true, 1)
	if r.Event.Type != corev1.EventTypeWarning {
		t.Errorf("fibguard's event is %s, want Warning", r.Event.Type)
	}
	if r.Event.Source.Component != "fibguard" && r.Event.ReportingController != "fibguard" {
		t.Errorf("event from %q/%q, want fibguard", r.Event.Source.Component, r.Event.ReportingController)
	}
	if r.Event.ReportingInstance != "" && r.Event.ReportingInstance != cl.Node {
		t.Errorf("event reporting instance %q, want the node %q", r.Event.ReportingInstance, cl.Node)
	}
	t.Logf("fibguard: %s %s: %s", r.Event.Type, r.Event.Reason, r.Event.Message)
	t.Logf("kubelet:  %s %s: %s", r.Kubelet.Type, r.Kubelet.Reason, r.Kubelet.Message)
	// Kubelet retries the sandbox; fibguard refuses each time and counts up
	// the same Event (waitEvent fails on a second fibguard Event).
	again := cl.waitEvent(ctx, t, pod, "PodNetworkRejected", code, false, 2)
	t.Logf("after kubelet's retries: one event, count %d", count(again.Event))
	p, err := cl.client.CoreV1().Pods(cl.ns).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Status.Phase != corev1.PodPending || p.Status.PodIP != "" {
		t.Errorf("rejected pod %s: %s, want Pending without an IP", pod, describe(p))
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Waiting == nil || cs.State.Waiting.Reason != "ContainerCreating" {
			t.Errorf("rejected pod %s: container state %+v, want waiting in ContainerCreating", pod, cs.State)
		}
	}
}

func loopbackRejected(ctx context.Context, t *testing.T, cl *cluster, _ installer) {
	if err := cl.switchNetwork(ctx, loopbackNetwork(), true); err != nil {
		t.Fatal(err)
	}
	rejected(ctx, t, cl, "loopback", cl.loopbackCode())
}

func nodeAddressRejected(ctx context.Context, t *testing.T, cl *cluster, _ installer) {
	if err := cl.switchNetwork(ctx, nodeAddressNetwork(cl.nodeIP), true); err != nil {
		t.Fatal(err)
	}
	rejected(ctx, t, cl, "nodeaddr", "FG002")
}

// shadowedRejected: the pod subnet is fine by itself, but a more specific
// route on the node (here through the node's uplink, as a VPN or underlay
// route would) takes the pod's address elsewhere.
func shadowedRejected(ctx context.Context, t *testing.T, cl *cluster, _ installer) {
	dev, err := cl.onNode(ctx, nil, "ip -o -4 route show default | awk '{for (i = 1; i < NF; i++) if ($i == \"dev\") print $(i+1)}' | head -n1")
	if err != nil || strings.TrimSpace(dev) == "" {
		t.Fatalf("the node's default route device: %q %v", dev, err)
	}
	if _, err := cl.onNode(ctx, nil, fmt.Sprintf("ip route replace %s dev %s", shadowRoute, strings.TrimSpace(dev))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := cl.onNode(context.Background(), nil, "ip route del "+shadowRoute+" 2>/dev/null; true"); err != nil {
			t.Errorf("removing the shadow route: %v", err)
		}
	})
	if err := cl.switchNetwork(ctx, shadowedNetwork(), true); err != nil {
		t.Fatal(err)
	}
	rejected(ctx, t, cl, "shadowed", "FG003")
}

// deleteRejected: pods fibguard refused delete cleanly (CNI DEL succeeds),
// none stays Terminating.
func deleteRejected(ctx context.Context, t *testing.T, cl *cluster, _ installer) {
	for _, pod := range []string{"loopback", "nodeaddr", "shadowed"} {
		cl.deletePod(ctx, t, pod)
	}
}

// warnMode: the same broken network in warn mode: the pod runs (warn never
// fails ADD) and the Warning Event is there, on every node.
func warnMode(ctx context.Context, t *testing.T, cl *cluster, inst installer) {
	inst.install(ctx, t, "warn")
	cl.eachNode(t, func(t *testing.T, cl *cluster) {
		if err := cl.switchNetwork(ctx, loopbackNetwork(), true); err != nil {
			t.Fatal(err)
		}
		cl.createProbe(ctx, t, "warned")
		ip := cl.waitRunning(ctx, t, "warned")
		if !loopbackNetwork().Subnet.Contains(ip) {
			t.Errorf("pod warned got %s, want an address in %s", ip, loopbackNetwork().Subnet)
		}
		r := cl.waitEvent(ctx, t, "warned", "PodNetworkWarning", cl.loopbackCode(), false, 1)
		if r.Event.Type != corev1.EventTypeWarning {
			t.Errorf("fibguard's event is %s, want Warning", r.Event.Type)
		}
		t.Logf("warn mode: pod Running at %s; %s: %s", ip, r.Event.Reason, r.Event.Message)
		cl.deletePod(ctx, t, "warned")
	})
}

// uninstall: fibguard leaves every node's conflist as the primary CNI
// wrote it, its binary goes, and new pods still start.
func uninstall(ctx context.Context, t *testing.T, cl *cluster, inst installer) {
	for _, n := range cl.all {
		if err := n.switchNetwork(ctx, n.healthyNetwork(), true); err != nil {
			t.Fatal(err)
		}
	}
	inst.uninstall(ctx, t)
	cl.eachNode(t, func(t *testing.T, n *cluster) { n.checkRestored(ctx, t, n.healthyNetwork()) })
}

// checkRestored checks the node after an uninstall: the primary conflist
// is byte for byte what the primary CNI wrote (n), fibguard's binaries and
// kubeconfig are gone, and a new pod runs and is reachable.
func (cl *cluster) checkRestored(ctx context.Context, t *testing.T, n network) {
	t.Helper()
	got, err := cl.readPrimary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := string(n.conflist(cl.IPAMDir)); got != want {
		t.Errorf("primary conflist after uninstall:\n%s\nwant what the primary CNI wrote:\n%s", got, want)
	}
	if left, err := cl.installedFiles(ctx, false); err != nil || len(left) > 0 {
		t.Errorf("after uninstall the node still has %v (err %v)", left, err)
	}
	if err := cl.switchNetwork(ctx, n, false); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("after-%d", time.Now().UnixNano()%100000)
	cl.createProbe(ctx, t, name)
	ip := cl.waitRunning(ctx, t, name)
	if err := cl.reachable(ctx, name, ip); err != nil {
		t.Errorf("node → pod after uninstall: %v", err)
	}
	cl.deletePod(ctx, t, name)
}
