package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/fibguard/fibguard/agent"
	"github.com/fibguard/fibguard/checker"
	"github.com/fibguard/fibguard/internal/apiservertest"
	"github.com/fibguard/fibguard/internal/nodestatus"
	"github.com/fibguard/fibguard/podevent"
)

// agentWait bounds how long a change may take to be reported: the agent
// waits for the node to be quiet for 100 ms, at most a second.
const agentWait = 10 * time.Second

// TestAgentSeesBreaksAfterSetup: two pods are set up through the real
// chain with fibguard; the agent, watching the host namespace and libcni's
// result cache, reports nothing while the node is healthy. Then the node
// changes under the running pods, and the agent reports each change of
// the first pod's state with what changed on the node; the second pod,
// untouched, never changes state:
//   - the pod IP becomes an address of the host (FG002), then goes;
//   - a more specific route through the uplink steals it (FG003), then goes;
//   - a pod torn down (DEL) is forgotten without a report.
func TestAgentSeesBreaksAfterSetup(t *testing.T) {
	needFibguard(t)
	w := newWorld(t,
		"link add up0 type veth peer name up1",
		"link set up0 up",
		"link set up1 up",
		"addr add 10.99.0.1/24 dev up0",
	)
	list := w.load(bridgeNet("10.88.0.0/24").withFibguard(nil))
	var ips []string
	for range 2 {
		res, err := w.add(list, w.newPod())
		if err != nil {
			t.Fatalf("ADD: %v", err)
		}
		ips = append(ips, res.IPs[0].Address.IP.String())
	}
	sink := startAgent(t, w)
	sink.waitRound(t, func(r agent.Round) bool { return len(r.Verdicts) == 2 })
	if ts := sink.transitions(); len(ts) != 0 {
		t.Fatalf("healthy node: transitions %v", ts)
	}

	steps := []struct {
		cmd        string
		kind       agent.Kind
		code       checker.Code // for a break
		changeText string
	}{
		{"addr add " + ips[0] + "/32 dev up0", agent.Broken, checker.CodeNodeAddress, "address " + ips[0] + "/32 added on up0"},
		{"addr del " + ips[0] + "/32 dev up0", agent.Restored, "", "address " + ips[0] + "/32 removed from up0"},
		{"route add " + ips[0] + "/32 via 10.99.0.2 dev up0", agent.Broken, checker.CodeShadowed, "route " + ips[0] + "/32 via 10.99.0.2 dev up0"},
		{"route del " + ips[0] + "/32 via 10.99.0.2 dev up0", agent.Restored, "", "route " + ips[0] + "/32 via 10.99.0.2 dev up0"},
	}
	for i, step := range steps {
		if _, err := w.host.IP(strings.Fields(step.cmd)...); err != nil {
			t.Fatalf("ip %s: %v", step.cmd, err)
		}
		got := sink.waitTransition(t, i+1)
		v := got.Verdict
		if got.Kind != step.kind || !strings.HasPrefix(v.Attachment.Pod.Name, "fgtest-") ||
			v.Attachment.Config.Result.IPs[0].Address.IP.String() != ips[0] {
			t.Fatalf("after `ip %s`: transition %s of %s (%v), want %s of the pod at %s", step.cmd, got.Kind, v.Attachment.Pod, v.Codes(), step.kind, ips[0])
		}
		if step.code != "" && !slices.Contains(v.Codes(), step.code) {
			t.Errorf("after `ip %s`: codes %v, want %s", step.cmd, v.Codes(), step.code)
		}
		if !slices.ContainsFunc(got.Changes, func(c string) bool { return strings.Contains(c, step.changeText) }) {
			t.Errorf("after `ip %s`: changes %q, want one containing %q", step.cmd, got.Changes, step.changeText)
		}
		t.Logf("after `ip %s`: %s %v, changes %q", step.cmd, got.Kind, v.Codes(), got.Changes)
	}
	if n := len(sink.transitions()); n != len(steps) {
		t.Errorf("%d transitions, want %d (the second pod must not change state): %v", n, len(steps), sink.transitions())
	}
}

// startAgent runs the agent on the world's host namespace and result
// cache until the end of the test.
func startAgent(t *testing.T, w *world) *recordingSink {
	t.Helper()
	sink := &recordingSink{changed: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agent.Run(ctx, agent.Config{
			ResultsDir: filepath.Join(w.cacheDir, "results"),
			Netns:      w.host.Path(),
			Sink:       sink,
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent: %v", err)
			}
		case <-time.After(agentWait):
			t.Error("the agent did not stop within 10 s of its context")
		}
	})
	return sink
}

// recordingSink keeps what the agent reports.
type recordingSink struct {
	mu      sync.Mutex
	ts      []agent.Transition
	rounds  []agent.Round
	changed chan struct{}
}

func (s *recordingSink) Transition(tr agent.Transition) {
	s.mu.Lock()
	s.ts = append(s.ts, tr)
	s.mu.Unlock()
}

func (s *recordingSink) NodeTransition(agent.NodeTransition) {}

func (s *recordingSink) Round(r agent.Round) {
	s.mu.Lock()
	s.rounds = append(s.rounds, r)
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *recordingSink) transitions() []agent.Transition {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ts)
}

// waitRound waits for a round that satisfies ok.
func (s *recordingSink) waitRound(t *testing.T, ok func(agent.Round) bool) {
	t.Helper()
	s.wait(t, "a round", func() bool {
		return slices.ContainsFunc(s.rounds, ok)
	})
}

// waitTransition waits for the n-th transition and returns it.
func (s *recordingSink) waitTransition(t *testing.T, n int) agent.Transition {
	t.Helper()
	s.wait(t, fmt.Sprintf("transition %d", n), func() bool { return len(s.ts) >= n })
	return s.transitions()[n-1]
}

func (s *recordingSink) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(agentWait)
	for {
		s.mu.Lock()
		ok := cond()
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-s.changed:
		case <-deadline:
			t.Fatalf("no %s within %v; transitions so far: %v", what, agentWait, s.transitions())
		}
	}
}

// agentBinary builds cmd/fibguard-agent once, for the tests that run it.
var agentBinary = sync.OnceValues(func() (string, error) {
	path := filepath.Join(setup.fgDir, "fibguard-agent")
	cmd := exec.Command("go", "build", "-o", path, "github.com/fibguard/fibguard/cmd/fibguard-agent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/fibguard-agent: %w\n%s", err, out)
	}
	return path, nil
})

// TestAgentBinary runs the real fibguard-agent on a node with a pod of a
// real API server: when the node gains the pod's IP as an address, the
// pod gets a Warning PodNetworkBroken Event naming FG002 and the change,
// and the broken gauge goes to 1; when the address goes, a Normal
// PodNetworkRestored Event, and the gauge back to 0. /healthz answers ok.
// Then node-wide, from the Node objects: another node whose InternalIP
// lies in this node's pod CIDR gives a Warning on this Node (FG051), and
// the node gauge goes to 1; that node deleted, a Normal one, and 0.
func TestAgentBinary(t *testing.T) {
	needFibguard(t)
	bin, err := agentBinary()
	if err != nil {
		t.Fatal(err)
	}
	c := apiservertest.Start(t)
	namespace := c.Namespace(t)
	acct := eventsAccount(t, c, namespace, agent.Rules()...)
	token, _ := c.RequestToken(t, acct, apiservertest.MinTokenRequestExpiration)
	kubeconfig := c.WriteKubeconfig(t, token)
	pod := c.Pod(t, namespace, "web-0")

	w := newWorld(t, "link add up0 type veth peer name up1", "link set up0 up", "link set up1 up")
	p := w.newPod()
	p.rt.Args = [][2]string{
		{"IgnoreUnknown", "1"},
		{"K8S_POD_NAMESPACE", pod.Namespace}, {"K8S_POD_NAME", pod.Name}, {"K8S_POD_UID", string(pod.UID)},
	}
	res, err := w.add(w.load(bridgeNet("10.88.0.0/24").withFibguard(nil)), p)
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	ip := res.IPs[0].Address.IP.String()

	self := createNode(t, c, "fgtest-self", "10.250.0.0/16", "")
	addr := freeAddr(t)
	statusFile := filepath.Join(t.TempDir(), "status.json")
	runAgent(t, bin, "-netns", w.host.Path(), "-results-dir", filepath.Join(w.cacheDir, "results"), "-conf-dir", "", "-node-status-file", statusFile,
		"-kubeconfig", kubeconfig, "-node-name", self.Name, "-metrics-bind-address", addr)
	waitFor(t, "/healthz ok and one pod network ok", func() error {
		if body, err := httpGet(addr, "/healthz"); err != nil || strings.TrimSpace(body) != "ok" {
			return fmt.Errorf("/healthz: %q, %w", body, err)
		}
		return wantGauge(addr, `fibguard_pod_networks{state="ok"}`, 1)
	})

	if _, err := w.host.IP("addr", "add", ip+"/32", "dev", "up0"); err != nil {
		t.Fatal(err)
	}
	broken := waitEvent(t, c, pod, podevent.ReasonBroken)
	if broken.Type != corev1.EventTypeWarning || !strings.HasPrefix(broken.Message, "FG002 ") ||
		!strings.Contains(broken.Message, "address "+ip+"/32 added on up0") || broken.Source.Host != self.Name {
		t.Errorf("PodNetworkBroken: type %s, message %q, host %s", broken.Type, broken.Message, broken.Source.Host)
	}
	waitFor(t, "the broken gauge at 1", func() error { return wantGauge(addr, `fibguard_pod_networks{state="broken"}`, 1) })

	if _, err := w.host.IP("addr", "del", ip+"/32", "dev", "up0"); err != nil {
		t.Fatal(err)
	}
	restored := waitEvent(t, c, pod, podevent.ReasonRestored)
	if restored.Type != corev1.EventTypeNormal || !strings.Contains(restored.Message, "removed from up0") {
		t.Errorf("PodNetworkRestored: type %s, message %q", restored.Type, restored.Message)
	}
	waitFor(t, "the broken gauge at 0", func() error { return wantGauge(addr, `fibguard_pod_networks{state="broken"}`, 0) })
	t.Logf("Events: %s %q; %s %q", broken.Reason, broken.Message, restored.Reason, restored.Message)

	// Node-wide: another node whose address lies in this node's pod CIDR.
	other := createNode(t, c, "fgtest-other", "10.251.0.0/16", "10.250.0.12")
	nodeBroken := waitNodeEvent(t, c, self, podevent.ReasonBroken)
	if nodeBroken.Type != corev1.EventTypeWarning || !strings.HasPrefix(nodeBroken.Message, "FG051 pod network 10.250.0.0/16") ||
		!strings.Contains(nodeBroken.Message, "10.250.0.12, the InternalIP of node "+other.Name) {
		t.Errorf("PodNetworkBroken on the Node: type %s, message %q", nodeBroken.Type, nodeBroken.Message)
	}
	waitFor(t, "the node gauge at 1", func() error { return wantGauge(addr, "fibguard_node_network_broken", 1) })
	if st, err := nodestatus.Read(statusFile, time.Now()); err != nil || st.Ready || !strings.HasPrefix(st.Reason, "FG051 ") {
		t.Errorf("node status %+v, %v; want not ready for FG051", st, err)
	}
	if err := c.Client.CoreV1().Nodes().Delete(context.Background(), other.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	nodeRestored := waitNodeEvent(t, c, self, podevent.ReasonRestored)
	if nodeRestored.Type != corev1.EventTypeNormal {
		t.Errorf("PodNetworkRestored on the Node: type %s, message %q", nodeRestored.Type, nodeRestored.Message)
	}
	waitFor(t, "the node gauge at 0", func() error { return wantGauge(addr, "fibguard_node_network_broken", 0) })
	if st, err := nodestatus.Read(statusFile, time.Now()); err != nil || !st.Ready {
		t.Errorf("node status %+v, %v; want ready", st, err)
	}
	t.Logf("Node Events: %s %q; %s %q", nodeBroken.Reason, nodeBroken.Message, nodeRestored.Reason, nodeRestored.Message)
}

// createNode creates a Node object with a unique name starting with
// prefix, a pod CIDR and an InternalIP ("" for none), deleted at the end
// of the test.
func createNode(t *testing.T, c *apiservertest.Cluster, prefix, podCIDR, internalIP string) *corev1.Node {
	t.Helper()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"},
		Spec:       corev1.NodeSpec{PodCIDR: podCIDR, PodCIDRs: []string{podCIDR}},
	}
	ctx := context.Background()
	created, err := c.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Client.CoreV1().Nodes().Delete(ctx, created.Name, metav1.DeleteOptions{}) }) // gone already is fine
	if internalIP != "" {
		created.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: internalIP}}
		if created, err = c.Client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return created
}

// waitNodeEvent waits for the Event of that reason about the Node.
func waitNodeEvent(t *testing.T, c *apiservertest.Cluster, node *corev1.Node, reason string) corev1.Event {
	t.Helper()
	var found corev1.Event
	waitFor(t, reason+" Event on the Node", func() error {
		sel := fields.Set{"involvedObject.kind": "Node", "involvedObject.uid": string(node.UID), "reason": reason}.AsSelector().String()
		list, err := c.Client.CoreV1().Events(podevent.NodeEventNamespace).List(context.Background(), metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			return err
		}
		if len(list.Items) != 1 {
			return fmt.Errorf("%d %s events on the Node", len(list.Items), reason)
		}
		found = list.Items[0]
		return nil
	})
	return found
}

// runAgent starts the agent binary until the end of the test, and stops
// it with SIGTERM, as kubelet does: it must exit at once and cleanly.
func runAgent(t *testing.T, bin string, args ...string) {
	t.Helper()
	var out strings.Builder
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("fibguard-agent after SIGTERM: %v", err)
			}
		case <-time.After(agentWait):
			_ = cmd.Process.Kill()
			t.Errorf("fibguard-agent still running 10 s after SIGTERM; killed: %v", <-done)
		}
		if t.Failed() {
			t.Logf("fibguard-agent's log:\n%s", out.String())
		}
	})
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func httpGet(addr, path string) (string, error) {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + addr + path)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }() // read whole below
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("%s: %s", path, resp.Status)
	}
	return string(b), nil
}

// wantGauge reads /metrics and compares one sample.
func wantGauge(addr, series string, want float64) error {
	body, err := httpGet(addr, "/metrics")
	if err != nil {
		return err
	}
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			if got, err := strconv.ParseFloat(v, 64); err != nil || got != want {
				return fmt.Errorf("%s = %s, want %v", series, v, want)
			}
			return nil
		}
	}
	return fmt.Errorf("%s not in /metrics", series)
}

// waitFor retries cond until it returns nil, for agentWait.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(agentWait)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, agentWait, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitEvent waits for the Event of that reason about the pod.
func waitEvent(t *testing.T, c *apiservertest.Cluster, pod *corev1.Pod, reason string) corev1.Event {
	t.Helper()
	var found corev1.Event
	waitFor(t, reason+" Event", func() error {
		sel := fields.Set{"involvedObject.uid": string(pod.UID), "reason": reason}.AsSelector().String()
		list, err := c.Client.CoreV1().Events(pod.Namespace).List(context.Background(), metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			return err
		}
		if len(list.Items) != 1 {
			return fmt.Errorf("%d %s events", len(list.Items), reason)
		}
		found = list.Items[0]
		return nil
	})
	return found
}
