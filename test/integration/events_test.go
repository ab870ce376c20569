package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/fibguard/fibguard/checker"
	"github.com/fibguard/fibguard/install"
	"github.com/fibguard/fibguard/internal/apiservertest"
	"github.com/fibguard/fibguard/internal/nstest"
	"github.com/fibguard/fibguard/podevent"
)

// eventBinary builds cmd/fibguard-event once, next to the fibguard binary
// the tests run, where the plugin looks for it (as the installer puts the
// two side by side in the CNI bin dir). The tests that do not record
// Events do not pay for the build.
var eventBinary = sync.OnceValue(func() error {
	path := filepath.Join(setup.fgDir, podevent.EventBinary)
	cmd := exec.Command("go", "build", "-o", path, "github.com/fibguard/fibguard/cmd/fibguard-event")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/fibguard-event: %w\n%s", err, out)
	}
	return nil
})

// k8sNode is a node whose bridge on 127.16.0.0/16 fibguard rejects, a
// Pod in a real API server whose sandboxes it sets up, and what the
// plugin needs to record Events there: a ServiceAccount bound to a
// ClusterRole of exactly podevent.Rules (what manifests/base grants).
type k8sNode struct {
	c    *apiservertest.Cluster
	w    *world
	pod  *corev1.Pod
	acct apiservertest.Account
	// fwd is the way to the API server from the node's host namespace.
	fwd *forwarder
}

func newK8sNode(t *testing.T) *k8sNode {
	t.Helper()
	needFibguard(t)
	if err := eventBinary(); err != nil {
		t.Fatal(err)
	}
	c := apiservertest.Start(t)
	namespace := c.Namespace(t)
	acct := eventsAccount(t, c, namespace)
	u, err := url.Parse(c.Server)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t)
	return &k8sNode{c: c, w: w, acct: acct, pod: c.Pod(t, namespace, "web-0"), fwd: forwardInto(t, w.host, u.Host)}
}

// eventsAccount creates the ServiceAccount "fibguard" in namespace, bound
// to a ClusterRole of exactly podevent.Rules (what manifests/base grants).
func eventsAccount(t *testing.T, c *apiservertest.Cluster, namespace string, extra ...podevent.Rule) apiservertest.Account {
	t.Helper()
	acct := c.ServiceAccount(t, namespace, "fibguard")
	var rules []rbacv1.PolicyRule
	for _, r := range append(podevent.Rules(), extra...) {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: r.APIGroups, Resources: r.Resources, Verbs: r.Verbs})
	}
	role := c.CreateClusterRole(t, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{GenerateName: "fibguard-"}, Rules: rules})
	c.BindClusterRole(t, acct, role.Name)
	return acct
}

// writeKubeconfig writes a kubeconfig for the forwarded API server with token.
func (k *k8sNode) writeKubeconfig(t *testing.T, token string) string {
	t.Helper()
	return apiservertest.WriteKubeconfigFile(t, "https://"+k.fwd.addr, k.c.CA, token)
}

// token returns a token of the node's account, valid for ten minutes.
func (k *k8sNode) token(t *testing.T) string {
	t.Helper()
	tok, _ := k.c.RequestToken(t, k.acct, apiservertest.MinTokenRequestExpiration)
	return tok
}

// add sets up a new sandbox of the Pod, as kubelet does on every retry,
// through the chain bridge on 127.16.0.0/16 + fibguard with settings, and
// returns how long ADD took and the chain's error.
func (k *k8sNode) add(t *testing.T, settings map[string]any) (time.Duration, error) {
	t.Helper()
	return k.addArgs(t, settings, true)
}

// addArgs is add, with K8S_POD_UID in CNI_ARGS as containerd and CRI-O
// pass it, or without it as cri-dockerd does.
func (k *k8sNode) addArgs(t *testing.T, settings map[string]any, withUID bool) (time.Duration, error) {
	t.Helper()
	p := k.w.newPod()
	p.rt.Args = [][2]string{
		{"IgnoreUnknown", "1"},
		{"K8S_POD_NAMESPACE", k.pod.Namespace},
		{"K8S_POD_NAME", k.pod.Name},
		{"K8S_POD_INFRA_CONTAINER_ID", p.rt.ContainerID},
	}
	if withUID {
		p.rt.Args = append(p.rt.Args, [2]string{"K8S_POD_UID", string(k.pod.UID)})
	}
	fg := map[string]any{"nodeName": "node-1"}
	for key, v := range settings {
		fg[key] = v
	}
	list := k.w.load(bridgeNet("127.16.0.0/16").withFibguard(fg))
	start := time.Now()
	_, err := k.w.add(list, p)
	return time.Since(start), err
}

// events lists, as admin, the Events about the Pod with reason, selected
// as `kubectl describe pod` selects them.
func (k *k8sNode) events(t *testing.T, reason string) []corev1.Event {
	t.Helper()
	sel := fields.Set{
		"involvedObject.kind": "Pod", "involvedObject.name": k.pod.Name,
		"involvedObject.namespace": k.pod.Namespace, "involvedObject.uid": string(k.pod.UID),
		"reason": reason,
	}.AsSelector().String()
	list, err := k.c.Client.CoreV1().Events(k.pod.Namespace).List(context.Background(), metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		t.Fatalf("list events: %v", err)
	}
	return list.Items
}

// lastRecord returns the last record of fibguard's log whose message
// starts with prefix, or nil.
func (w *world) lastRecord(t *testing.T, prefix string) map[string]any {
	t.Helper()
	recs := w.records(t, prefix)
	if len(recs) == 0 {
		return nil
	}
	return recs[len(recs)-1]
}

// records returns the records of fibguard's log whose message starts with
// prefix.
func (w *world) records(t *testing.T, prefix string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(w.logFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // nothing logged yet
	}
	if err != nil {
		t.Fatal(err)
	}
	var found []map[string]any
	for line := range strings.Lines(string(data)) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		if msg, _ := rec["msg"].(string); strings.HasPrefix(msg, prefix) {
			found = append(found, rec)
		}
	}
	return found
}

// assertRecordFailed checks that the last Event fibguard tried was not
// recorded and that its log says why, in an error that want (a regular
// expression) matches.
func (w *world) assertRecordFailed(t *testing.T, want string) {
	t.Helper()
	rec := w.lastRecord(t, "cannot record Kubernetes event")
	msg, _ := rec["error"].(string)
	if rec == nil || rec["level"] != "ERROR" || !regexp.MustCompile(want).MatchString(msg) {
		t.Errorf("the log has no error record about the event saying %q: %v", want, rec)
	}
}

// TestEventsThroughChain: kubelet's retries of a pod whose network
// fibguard rejects, through libcni with the reference plugins and both
// fibguard binaries on the CNI path, give one PodNetworkRejected Warning
// whose count grows with each retry, which `kubectl describe pod` shows;
// in warn mode ADD succeeds and the Event says PodNetworkWarning.
func TestEventsThroughChain(t *testing.T) {
	k := newK8sNode(t)
	conf := map[string]any{"kubeconfig": k.writeKubeconfig(t, k.token(t))}

	for i := int32(1); i <= 3; i++ {
		took, err := k.add(t, conf)
		assertRejected(t, err, checker.CodeHostLoopback)
		events := k.events(t, podevent.ReasonRejected)
		if len(events) != 1 || events[0].Count != i {
			t.Fatalf("after ADD #%d: %d events %+v, want one with count %d", i, len(events), events, i)
		}
		t.Logf("ADD #%d, recording the event: %v", i, took)
	}
	e := k.events(t, podevent.ReasonRejected)[0]
	wantRef := corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: k.pod.Namespace, Name: k.pod.Name, UID: k.pod.UID}
	if e.InvolvedObject != wantRef || e.Type != corev1.EventTypeWarning || e.Action != "ADD" ||
		e.Source.Component != "fibguard" || e.Source.Host != "node-1" || e.ReportingInstance != "node-1" {
		t.Errorf("event: involvedObject %+v, type %s, action %s, source %+v, reportingInstance %s; "+
			"want %+v, Warning, ADD, fibguard on node-1", e.InvolvedObject, e.Type, e.Action, e.Source, e.ReportingInstance, wantRef)
	}
	if !strings.HasPrefix(e.Message, "FG001 pod IP 127.16.0.") || strings.Contains(e.Message, "\n") {
		t.Errorf("message %q does not start with the FG001 finding on one line", e.Message)
	}
	if rec := k.w.lastRecord(t, "Kubernetes event recorded"); rec == nil || rec["count"] != 3.0 {
		t.Errorf("the log does not record the 3rd occurrence: %v", rec)
	}
	out, err := k.c.RunKubectl(context.Background(), "describe", "pod", "-n", k.pod.Namespace, k.pod.Name)
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for l := range strings.Lines(string(out)) {
		if strings.Contains(l, podevent.ReasonRejected) {
			line = l
		}
	}
	for _, want := range []string{"Warning", "(x3 over", "fibguard", "FG001 pod IP 127.16.0."} {
		if !strings.Contains(line, want) {
			t.Errorf("kubectl describe pod: the event line %q lacks %q\n%s", line, want, out)
		}
	}

	t.Run("warn", func(t *testing.T) {
		conf := map[string]any{"kubeconfig": conf["kubeconfig"], "mode": "warn"}
		if _, err := k.add(t, conf); err != nil {
			t.Fatalf("ADD in warn mode: %v", err)
		}
		events := k.events(t, podevent.ReasonWarning)
		if len(events) != 1 || events[0].Count != 1 || events[0].Type != corev1.EventTypeWarning ||
			!strings.HasPrefix(events[0].Message, "FG001 ") {
			t.Errorf("PodNetworkWarning events: %+v, want one with the finding", events)
		}
	})
}

// TestEventsWithoutPodUID: with the default rights (podevent.Rules, no get
// on pods), a runtime that passes no K8S_POD_UID (cri-dockerd) gets the
// same verdict, no Event, and one log line per ADD that names the missing
// K8S_POD_UID and the option that grants pods get. (With the UID, the
// same rights record the Event: TestEventsThroughChain.)
func TestEventsWithoutPodUID(t *testing.T) {
	k := newK8sNode(t)
	conf := map[string]any{"kubeconfig": k.writeKubeconfig(t, k.token(t))}
	const prefix = "cannot record Kubernetes event"
	for i := 1; i <= 2; i++ {
		before := len(k.w.records(t, prefix))
		_, err := k.addArgs(t, conf, false)
		assertRejected(t, err, checker.CodeHostLoopback)
		if n := len(k.w.records(t, prefix)) - before; n != 1 {
			t.Errorf("ADD #%d without K8S_POD_UID: %d log records %q, want 1", i, n, prefix)
		}
		k.w.assertRecordFailed(t, `K8S_POD_UID.*forbidden.*pods-get.*rbac\.podsGet`)
	}
	t.Logf("the log says: %v", k.w.lastRecord(t, prefix)["error"])
	if n := len(k.events(t, podevent.ReasonRejected)); n != 0 {
		t.Errorf("%d events recorded without the pod's UID and without pods get", n)
	}
	// The same rights, with the UID: recorded.
	_, err := k.add(t, conf)
	assertRejected(t, err, checker.CodeHostLoopback)
	if events := k.events(t, podevent.ReasonRejected); len(events) != 1 || events[0].Count != 1 {
		t.Errorf("with K8S_POD_UID: events %+v, want one with count 1", events)
	}
}

// TestEventsAPIServerDown: with the API server stopped, refusing
// connections or unreachable, ADD still rejects the pod, within
// eventTimeout plus a margin, and the log says why no Event was recorded.
func TestEventsAPIServerDown(t *testing.T) {
	k := newK8sNode(t)
	kubeconfig := k.writeKubeconfig(t, k.token(t))
	if err := k.c.Stop(); err != nil {
		t.Fatalf("stop the API server: %v", err)
	}
	t.Cleanup(func() {
		if err := k.c.Restart(); err != nil {
			t.Errorf("restart the API server: %v", err)
		}
	})
	const eventTimeout = time.Second
	// margin covers the chain's other plugins, the checks, the execs and
	// a loaded machine: a bound on a timeout path, not a performance test.
	const margin = 3 * time.Second
	for _, tc := range []struct {
		name      string
		blackhole bool
		logged    string
	}{
		// The forwarder accepts, then finds nothing to connect to and
		// closes: the client reads EOF, or a reset when the close races its
		// request.
		{"refused", false, "EOF|connection reset by peer"},
		// The context's deadline or client-go's own timeout, set to the
		// same time, whichever fires first.
		{"unreachable", true, "deadline exceeded|Timeout exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k.fwd.blackhole.Store(tc.blackhole)
			took, err := k.add(t, map[string]any{"kubeconfig": kubeconfig, "eventTimeout": eventTimeout.String()})
			assertRejected(t, err, checker.CodeHostLoopback)
			if took > eventTimeout+margin {
				t.Errorf("ADD took %v, more than eventTimeout %v + %v", took, eventTimeout, margin)
			}
			// The event binary gives up a little before the deadline, to
			// say why (a tenth of the time left, at most 100 ms): an ADD
			// much shorter than eventTimeout did not wait for the Event.
			if tc.blackhole && took < eventTimeout*3/4 {
				t.Errorf("ADD took %v, well under eventTimeout %v: did the plugin wait at all?", took, eventTimeout)
			}
			k.w.assertRecordFailed(t, tc.logged)
			t.Logf("ADD with the API server %s: %v", tc.name, took)
		})
	}
}

// TestEventsUnauthorized: an expired or unknown token leaves the verdict
// as it is, and the log says Unauthorized.
func TestEventsUnauthorized(t *testing.T) {
	k := newK8sNode(t)
	now := time.Now()
	expired, err := k.c.MintToken(k.acct, now.Add(-2*time.Hour), now.Add(-apiservertest.ExpiryLeeway-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, token string }{
		{"expired", expired},
		{"unknown", "not-a-token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := k.add(t, map[string]any{"kubeconfig": k.writeKubeconfig(t, tc.token)})
			assertRejected(t, err, checker.CodeHostLoopback)
			k.w.assertRecordFailed(t, "Unauthorized")
			if n := len(k.events(t, podevent.ReasonRejected)); n != 0 {
				t.Errorf("%d events recorded with a bad token", n)
			}
		})
	}
}

// TestEventsTokenRefresh: the plugin's kubeconfig, written by the
// installer's refresh logic (install.Kubeconfig.Keep) from a service
// account directory, holds a token that has expired: the plugin rejects
// the pod, the Event is refused (a log line only). The kubelet then
// writes a short-lived token minted by the API server into the directory,
// the running installer rewrites the kubeconfig, and the next rejection
// records its Event — nothing restarted.
func TestEventsTokenRefresh(t *testing.T) {
	k := newK8sNode(t)
	now := time.Now()
	expired, err := k.c.MintToken(k.acct, now.Add(-2*time.Hour), now.Add(-apiservertest.ExpiryLeeway-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	saDir := t.TempDir()
	for name, body := range map[string][]byte{"ca.crt": k.c.CA, "namespace": []byte(k.acct.Namespace), "token": []byte(expired)} {
		if err := os.WriteFile(filepath.Join(saDir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kc := &install.Kubeconfig{
		Path:              filepath.Join(t.TempDir(), "fibguard-kubeconfig"),
		ServiceAccountDir: saDir,
		Server:            "https://" + k.fwd.addr,
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var keepErr error
	wg.Go(func() { keepErr = kc.Keep(ctx, 50*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil))) })
	defer func() {
		cancel()
		wg.Wait()
		if keepErr != nil {
			t.Errorf("Keep: %v", keepErr)
		}
	}()
	waitForToken(t, kc.Path, expired)

	conf := map[string]any{"kubeconfig": kc.Path}
	_, err = k.add(t, conf)
	assertRejected(t, err, checker.CodeHostLoopback)
	k.w.assertRecordFailed(t, "Unauthorized")
	if n := len(k.events(t, podevent.ReasonRejected)); n != 0 {
		t.Fatalf("%d events recorded with an expired token", n)
	}

	// The kubelet rotates the projected token: a new file renamed over
	// the old one, valid for two minutes.
	fresh, err := k.c.MintToken(k.acct, time.Now(), time.Now().Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(saDir, ".token.new")
	if err := os.WriteFile(tmp, []byte(fresh), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(saDir, "token")); err != nil {
		t.Fatal(err)
	}
	waitForToken(t, kc.Path, fresh)

	_, err = k.add(t, conf)
	assertRejected(t, err, checker.CodeHostLoopback)
	if events := k.events(t, podevent.ReasonRejected); len(events) != 1 || events[0].Count != 1 {
		t.Errorf("after the refresh: events %+v, want one with count 1", events)
	}
	if rec := k.w.lastRecord(t, "Kubernetes event recorded"); rec == nil {
		t.Error("the log does not say the event was recorded")
	}
}

// waitForToken waits until the kubeconfig at path holds token.
func waitForToken(t *testing.T, path, token string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil && strings.Contains(string(b), token) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not hold the new token after 10s (%v)", path, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// forwarder listens on 127.0.0.1 inside a namespace and forwards every
// connection to an address of the test's own namespace: the plugin runs
// in the node's host namespace, where the API server's loopback address
// does not exist.
type forwarder struct {
	// addr is the address to connect to inside the namespace.
	addr string
	// blackhole, when set, makes a connection that cannot reach the
	// target hang instead of closing, as when the API server's host is
	// cut off rather than refusing.
	blackhole atomic.Bool
}

// forwardInto starts a forwarder into n for target; the test's cleanup
// stops it and closes every connection.
func forwardInto(t *testing.T, n *nstest.NS, target string) *forwarder {
	t.Helper()
	var l net.Listener
	err := ns.WithNetNSPath(n.Path(), func(ns.NetNS) error {
		var err error
		l, err = net.Listen("tcp", "127.0.0.1:0") // the socket stays in n
		return err
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", n.Name(), err)
	}
	f := &forwarder{addr: l.Addr().String()}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	track := func(c net.Conn) {
		mu.Lock()
		defer mu.Unlock()
		conns = append(conns, c)
	}
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return // closed by the cleanup
			}
			track(in)
			wg.Go(func() {
				out, err := net.DialTimeout("tcp", target, 5*time.Second)
				if err != nil {
					if f.blackhole.Load() {
						_, _ = io.Copy(io.Discard, in) // until the client or the cleanup closes it
					}
					_ = in.Close()
					return
				}
				track(out)
				wg.Go(func() { _, _ = io.Copy(out, in); _ = out.Close() })
				_, _ = io.Copy(in, out)
				_ = in.Close()
			})
		}
	})
	return f
}
