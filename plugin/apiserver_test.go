//go:build !fibguard_nok8s

package plugin

import (
	"context"
	"io"
	"net"
	"net/url"
	"path/filepath"
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

	"github.com/fibguard/fibguard/internal/apiservertest"
	"github.com/fibguard/fibguard/internal/nstest"
	"github.com/fibguard/fibguard/podevent"
)

// k8sNode is a node whose pod network fibguard rejects (a bridge on
// 127.16.0.0/16), a Pod for it in a real API server, and what the plugin
// needs to post Events there: a ServiceAccount bound to a ClusterRole of
// exactly podevent.Rules, and its token.
type k8sNode struct {
	c    *apiservertest.Cluster
	pn   *podNet
	pod  *corev1.Pod
	acct apiservertest.Account
	// fwd is the way to the API server from the host namespace of pn.
	fwd   *forwarder
	token string
}

func newK8sNode(t *testing.T) *k8sNode {
	t.Helper()
	c := apiservertest.Start(t)
	pn := newBridgePodNet(t, "127.16.0.1/16", "127.16.0.2/16")
	namespace := c.Namespace(t)
	acct := c.ServiceAccount(t, namespace, "fibguard")
	var rules []rbacv1.PolicyRule
	for _, r := range podevent.Rules() {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: r.APIGroups, Resources: r.Resources, Verbs: r.Verbs})
	}
	role := c.CreateClusterRole(t, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{GenerateName: "fibguard-"}, Rules: rules})
	c.BindClusterRole(t, acct, role.Name)
	token, _ := c.RequestToken(t, acct, apiservertest.MinTokenRequestExpiration)
	u, err := url.Parse(c.Server)
	if err != nil {
		t.Fatal(err)
	}
	return &k8sNode{
		c: c, pn: pn, acct: acct, token: token,
		pod: c.Pod(t, namespace, "web-0"),
		fwd: forwardInto(t, pn.host, u.Host),
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

// add runs the plugin binary's ADD (or CHECK) for the Pod in the node's
// host namespace, as the runtime does, and returns what it did and how
// long it took.
func (k *k8sNode) add(t *testing.T, command string, cniArgs string, conf map[string]any) (outcome, time.Duration) {
	t.Helper()
	fields := map[string]any{"prevResult": k.pn.prevResult(t, "1.0.0"), "nodeName": "node-1"}
	for key, v := range conf {
		fields[key] = v
	}
	env := cniEnv(command, k.pn.pod.Path())
	env["CNI_ARGS"] = cniArgs
	start := time.Now()
	o := invocation{env: env, stdin: confJSON(t, "1.0.0", fields), in: k.pn.host}.run(t)
	return o, time.Since(start)
}

// podArgs is the CNI_ARGS containerd passes for the Pod.
func (k *k8sNode) podArgs() string {
	return "IgnoreUnknown=1;K8S_POD_NAMESPACE=" + k.pod.Namespace + ";K8S_POD_NAME=" + k.pod.Name +
		";K8S_POD_INFRA_CONTAINER_ID=4f1f5c7e2a0b;K8S_POD_UID=" + string(k.pod.UID)
}

// kubeconfig writes a kubeconfig for the forwarded API server with token.
func (k *k8sNode) kubeconfig(t *testing.T, token string) string {
	t.Helper()
	return writeKubeconfig(t, "https://"+k.fwd.addr, k.c.CA, token)
}

// events lists, as admin, the Events about the Pod, selected as
// `kubectl describe pod` selects them.
func (k *k8sNode) events(t *testing.T) []corev1.Event {
	t.Helper()
	sel := fields.Set{
		"involvedObject.kind": "Pod", "involvedObject.name": k.pod.Name,
		"involvedObject.namespace": k.pod.Namespace, "involvedObject.uid": string(k.pod.UID),
	}.AsSelector().String()
	list, err := k.c.Client.CoreV1().Events(k.pod.Namespace).List(context.Background(), metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		t.Fatalf("list events: %v", err)
	}
	return list.Items
}

// TestEventsAgainstAPIServer: rejected five times, as kubelet retries a
// sandbox, the pod has one Event with count 5 that `kubectl describe pod`
// shows; in warn mode ADD passes and the Event says PodNetworkWarning.
func TestEventsAgainstAPIServer(t *testing.T) {
	k := newK8sNode(t)
	kubeconfig := k.kubeconfig(t, k.token)
	logFile := filepath.Join(t.TempDir(), "fibguard.log")
	conf := map[string]any{"kubeconfig": kubeconfig, "logFile": logFile}

	for i := 1; i <= 5; i++ {
		o, took := k.add(t, "ADD", k.podArgs(), conf)
		if e := cniError(t, o); o.exit == 0 || e.Code != CodeRejected {
			t.Fatalf("ADD #%d: exit %d, error %+v; want a rejection", i, o.exit, e)
		}
		if len(o.stderr) != 0 {
			t.Errorf("ADD #%d: stderr is not empty with a logFile: %s", i, o.stderr)
		}
		t.Logf("ADD #%d, recording the event: %v", i, took)
	}
	events := k.events(t)
	if len(events) != 1 {
		t.Fatalf("%d events about the pod, want 1: %+v", len(events), events)
	}
	e := events[0]
	wantRef := corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: k.pod.Namespace, Name: k.pod.Name, UID: k.pod.UID}
	if e.InvolvedObject != wantRef || e.Type != corev1.EventTypeWarning || e.Reason != podevent.ReasonRejected ||
		e.Count != 5 || e.Source.Component != "fibguard" || e.Source.Host != "node-1" || e.ReportingInstance != "node-1" {
		t.Errorf("event: involvedObject %+v, type %s, reason %s, count %d, source %+v, reportingInstance %s; "+
			"want %+v, Warning, %s, 5, fibguard on node-1", e.InvolvedObject, e.Type, e.Reason, e.Count, e.Source,
			e.ReportingInstance, wantRef, podevent.ReasonRejected)
	}
	if !strings.HasPrefix(e.Message, "FG001 pod IP 127.16.0.2 ") || strings.Contains(e.Message, "\n") {
		t.Errorf("message %q does not start with the FG001 finding on one line", e.Message)
	}
	if rec := findRecord(readLog(t, logFile), "Kubernetes event recorded"); rec == nil || rec["count"] != 5.0 {
		t.Errorf("the log does not record the 5th occurrence: %v", rec)
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
	for _, want := range []string{"Warning", "(x5 over", "fibguard", "FG001 pod IP 127.16.0.2"} {
		if !strings.Contains(line, want) {
			t.Errorf("kubectl describe pod: the event line %q lacks %q\n%s", line, want, out)
		}
	}

	t.Run("warn", func(t *testing.T) {
		conf := map[string]any{"kubeconfig": kubeconfig, "mode": "warn"}
		o, _ := k.add(t, "ADD", k.podArgs(), conf)
		if o.exit != 0 {
			t.Fatalf("ADD in warn mode: exit %d\n%s", o.exit, o.stdout)
		}
		var warning *corev1.Event
		for _, e := range k.events(t) {
			if e.Reason == podevent.ReasonWarning {
				warning = &e
			}
		}
		if warning == nil || warning.Count != 1 || warning.Type != corev1.EventTypeWarning || !strings.HasPrefix(warning.Message, "FG001 ") {
			t.Errorf("no PodNetworkWarning event with the finding: %+v", warning)
		}
	})

	t.Run("no K8S_POD_UID", func(t *testing.T) {
		args := "K8S_POD_NAMESPACE=" + k.pod.Namespace + ";K8S_POD_NAME=" + k.pod.Name
		o, _ := k.add(t, "CHECK", args, conf)
		if e := cniError(t, o); e.Code != CodeRejected {
			t.Fatalf("CHECK: %+v, want a rejection", e)
		}
		for _, e := range k.events(t) {
			if e.Reason == podevent.ReasonRejected && (e.Count != 6 || e.Action != "CHECK") {
				t.Errorf("event: count %d, action %s; want 6, CHECK (the UID found through pods get)", e.Count, e.Action)
			}
		}
	})
}

// TestEventsAPIServerDown: with the API server stopped, refusing
// connections or unreachable, ADD still rejects the pod, within
// eventTimeout plus a margin, and logs why no Event was recorded.
func TestEventsAPIServerDown(t *testing.T) {
	k := newK8sNode(t)
	if err := k.c.Stop(); err != nil {
		t.Fatalf("stop the API server: %v", err)
	}
	t.Cleanup(func() {
		if err := k.c.Restart(); err != nil {
			t.Errorf("restart the API server: %v", err)
		}
	})
	const eventTimeout = time.Second
	// margin covers the checks, the exec and a loaded machine: a bound
	// on a timeout path, not a performance test.
	const margin = 3 * time.Second
	for _, tc := range []struct {
		name      string
		blackhole bool
	}{
		{"refused", false},
		{"unreachable", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k.fwd.blackhole.Store(tc.blackhole)
			logFile := filepath.Join(t.TempDir(), "fibguard.log")
			o, took := k.add(t, "ADD", k.podArgs(), map[string]any{
				"kubeconfig": k.kubeconfig(t, k.token), "eventTimeout": eventTimeout.String(), "logFile": logFile,
			})
			if e := cniError(t, o); o.exit == 0 || e.Code != CodeRejected {
				t.Fatalf("ADD: exit %d, error %+v; want a rejection", o.exit, e)
			}
			if took > eventTimeout+margin {
				t.Errorf("ADD took %v, more than eventTimeout %v + %v", took, eventTimeout, margin)
			}
			if tc.blackhole && took < eventTimeout {
				t.Errorf("ADD took %v, less than eventTimeout %v: did the plugin wait at all?", took, eventTimeout)
			}
			rec := findRecord(readLog(t, logFile), "cannot record Kubernetes event")
			if rec == nil {
				t.Fatal("the log does not say that the event could not be recorded")
			}
			if len(o.stderr) != 0 {
				t.Errorf("stderr is not empty with a logFile: %s", o.stderr)
			}
			t.Logf("ADD with the API server %s: %v; logged %v", tc.name, took, rec["error"])
		})
	}
}

// TestEventsBadToken: an expired or unknown token leaves the verdict as it
// is and logs the API server's refusal.
func TestEventsBadToken(t *testing.T) {
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
			logFile := filepath.Join(t.TempDir(), "fibguard.log")
			o, _ := k.add(t, "ADD", k.podArgs(), map[string]any{"kubeconfig": k.kubeconfig(t, tc.token), "logFile": logFile})
			if e := cniError(t, o); o.exit == 0 || e.Code != CodeRejected {
				t.Fatalf("ADD: exit %d, error %+v; want a rejection", o.exit, e)
			}
			rec := findRecord(readLog(t, logFile), "cannot record Kubernetes event")
			if msg, _ := rec["error"].(string); !strings.Contains(msg, "Unauthorized") {
				t.Errorf("the log does not say Unauthorized: %v", rec)
			}
			if n := len(k.events(t)); n != 0 {
				t.Errorf("%d events recorded with a bad token", n)
			}
		})
	}
}
