package kube

import (
	"context"
	"fmt"
	"maps"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/fibguard/fibguard/internal/apiservertest"
	"github.com/fibguard/fibguard/podevent"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := apiservertest.Down(); err != nil {
		fmt.Fprintln(os.Stderr, "podevent/kube tests:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// k8s is a namespace of a real API server with a ServiceAccount that has
// exactly Rules, and a Recorder that uses that account's token.
type k8s struct {
	c         *apiservertest.Cluster
	namespace string
	acct      apiservertest.Account
	rec       *Recorder
}

// newK8s starts (or reuses) the test binary's API server and sets up a
// namespace, the account, its ClusterRole from Rules (and the extra rules
// of an option), and a kubeconfig.
func newK8s(t *testing.T, extra ...podevent.Rule) *k8s {
	t.Helper()
	c := apiservertest.Start(t)
	ns := c.Namespace(t)
	acct := c.ServiceAccount(t, ns, "fibguard")
	role := c.CreateClusterRole(t, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "fibguard-events-"},
		Rules:      policyRules(append(podevent.Rules(), extra...)),
	})
	c.BindClusterRole(t, acct, role.Name)
	token, _ := c.RequestToken(t, acct, apiservertest.MinTokenRequestExpiration)
	return &k8s{c: c, namespace: ns, acct: acct, rec: &Recorder{
		Kubeconfig: c.WriteKubeconfig(t, token),
		Timeout:    10 * time.Second, // generous: this is a shared machine
		UserAgent:  "fibguard-test",
	}}
}

// policyRules converts rules to RBAC's type.
func policyRules(rules []podevent.Rule) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	for _, r := range rules {
		out = append(out, rbacv1.PolicyRule{APIGroups: r.APIGroups, Resources: r.Resources, Verbs: r.Verbs})
	}
	return out
}

// event returns an Event about a new Pod of the namespace.
func (k *k8s) event(t *testing.T, podName string) podevent.Event {
	t.Helper()
	pod := k.c.Pod(t, k.namespace, podName)
	return podevent.Event{
		Pod:     podevent.Pod{Namespace: pod.Namespace, Name: pod.Name, UID: string(pod.UID)},
		Reason:  podevent.ReasonRejected,
		Message: "FG001 pod IP 127.16.0.2 is unreachable from the host",
		Action:  "ADD",
		Node:    "node-1",
	}
}

// eventsAbout lists, as admin, the Events of the pod's UID, the way
// `kubectl describe pod` selects them.
func (k *k8s) eventsAbout(t *testing.T, pod podevent.Pod) []corev1.Event {
	t.Helper()
	sel := fields.Set{
		"involvedObject.kind": "Pod", "involvedObject.name": pod.Name,
		"involvedObject.namespace": pod.Namespace, "involvedObject.uid": pod.UID,
	}.AsSelector().String()
	list, err := k.c.Client.CoreV1().Events(pod.Namespace).List(context.Background(), metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		t.Fatalf("list events: %v", err)
	}
	return list.Items
}

// TestRecordAgainstAPIServer: the first Record creates the Event as
// kubelet would, the next ones count on it: one Event, count 5.
func TestRecordAgainstAPIServer(t *testing.T) {
	k := newK8s(t)
	ev := k.event(t, "web-0")
	first := time.Now().Add(-time.Minute).Truncate(time.Second)
	for i := int32(1); i <= 5; i++ {
		ev.Time = first.Add(time.Duration(i) * time.Second)
		ev.Message = fmt.Sprintf("FG001 occurrence %d", i)
		out, err := k.rec.Record(context.Background(), ev)
		if err != nil {
			t.Fatalf("Record #%d: %v", i, err)
		}
		if out.Count != i || out.Name != EventName(ev.Pod, ev.Reason) {
			t.Errorf("Record #%d: %+v, want count %d of %s", i, out, i, EventName(ev.Pod, ev.Reason))
		}
	}
	events := k.eventsAbout(t, ev.Pod)
	if len(events) != 1 {
		t.Fatalf("%d events about the pod, want 1: %+v", len(events), events)
	}
	e := events[0]
	want := corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: ev.Pod.Namespace, Name: ev.Pod.Name, UID: e.InvolvedObject.UID}
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"involvedObject", e.InvolvedObject, want},
		{"involvedObject.uid", string(e.InvolvedObject.UID), ev.Pod.UID},
		{"type", e.Type, corev1.EventTypeWarning},
		{"reason", e.Reason, podevent.ReasonRejected},
		{"message (the latest)", e.Message, "FG001 occurrence 5"},
		{"action", e.Action, "ADD"},
		{"count", e.Count, int32(5)},
		{"source", e.Source, corev1.EventSource{Component: "fibguard", Host: "node-1"}},
		{"reportingComponent", e.ReportingController, "fibguard"},
		{"reportingInstance", e.ReportingInstance, "node-1"},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
	if !e.FirstTimestamp.Time.Equal(first.Add(time.Second)) || !e.LastTimestamp.Time.Equal(first.Add(5*time.Second)) {
		t.Errorf("timestamps: first %v, last %v; want %v, %v", e.FirstTimestamp, e.LastTimestamp,
			first.Add(time.Second), first.Add(5*time.Second))
	}

	// Another reason about the same pod is another Event.
	ev.Reason = podevent.ReasonWarning
	if out, err := k.rec.Record(context.Background(), ev); err != nil || out.Count != 1 {
		t.Errorf("Record of a warning: %+v, %v; want a new event", out, err)
	}
	if n := len(k.eventsAbout(t, ev.Pod)); n != 2 {
		t.Errorf("%d events about the pod, want 2", n)
	}
}

// TestRecordConcurrent: occurrences recorded at the same time are all
// counted: the conditional update makes the losers read and count again.
func TestRecordConcurrent(t *testing.T) {
	k := newK8s(t)
	ev := k.event(t, "web-1")
	const n = maxAttempts // every loser loses to a distinct winner, so this many always succeed
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			if _, err := k.rec.Record(context.Background(), ev); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Record: %v", err)
	}
	events := k.eventsAbout(t, ev.Pod)
	if len(events) != 1 || events[0].Count != n {
		t.Errorf("got %d events (%+v), want one with count %d", len(events), events, n)
	}
}

// TestRecordPodUID: without K8S_POD_UID the Recorder asks for the pod's
// UID, which `kubectl describe` needs to find the Event. With the pods-get
// option (PodsGetRules) it gets it, and a pod that does not exist is an
// error; with the default rights it is forbidden, the error names the
// missing K8S_POD_UID and the option, and no Event is written.
func TestRecordPodUID(t *testing.T) {
	t.Run("pods get granted", func(t *testing.T) {
		k := newK8s(t, podevent.PodsGetRules()...)
		ev := k.event(t, "web-2")
		uid := ev.Pod.UID
		ev.Pod.UID = ""
		if _, err := k.rec.Record(context.Background(), ev); err != nil {
			t.Fatalf("Record: %v", err)
		}
		ev.Pod.UID = uid
		if events := k.eventsAbout(t, ev.Pod); len(events) != 1 {
			t.Errorf("%d events about pod UID %s, want 1", len(events), uid)
		}
		ev.Pod = podevent.Pod{Namespace: k.namespace, Name: "absent"}
		_, err := k.rec.Record(context.Background(), ev)
		if !apierrors.IsNotFound(err) {
			t.Errorf("Record about an absent pod: %v, want NotFound", err)
		}
	})
	t.Run("default rights", func(t *testing.T) {
		k := newK8s(t)
		ev := k.event(t, "web-2")
		uid := ev.Pod.UID
		ev.Pod.UID = ""
		_, err := k.rec.Record(context.Background(), ev)
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "K8S_POD_UID") || !strings.Contains(err.Error(), "pods-get") {
			t.Errorf("Record without the UID: %v, want Forbidden naming K8S_POD_UID and the pods-get option", err)
		}
		ev.Pod.UID = uid
		if events := k.eventsAbout(t, ev.Pod); len(events) != 0 {
			t.Errorf("%d events about pod UID %s, want none", len(events), uid)
		}
		if out, err := k.rec.Record(context.Background(), ev); err != nil || out.Count != 1 {
			t.Errorf("Record with the UID: %+v, %v; want a new Event", out, err)
		}
	})
}

// TestRecordRights: Rules are needed, not only sufficient: an account
// without them is refused, and Record says so.
func TestRecordRights(t *testing.T) {
	k := newK8s(t)
	ev := k.event(t, "web-3")
	stranger := k.c.ServiceAccount(t, k.namespace, "stranger")
	token, _ := k.c.RequestToken(t, stranger, apiservertest.MinTokenRequestExpiration)
	rec := *k.rec
	rec.Kubeconfig = k.c.WriteKubeconfig(t, token)
	if _, err := rec.Record(context.Background(), ev); !apierrors.IsForbidden(err) {
		t.Errorf("Record without rights: %v, want Forbidden", err)
	}
}

// TestRulesAreLeast: `kubectl auth can-i --list` for an account bound to
// Rules shows Rules and nothing else beyond what an account without any
// binding may do (discovery, reviews of its own rights, public trust
// bundles: what every authenticated user has).
func TestRulesAreLeast(t *testing.T) {
	k := newK8s(t)
	stranger := k.c.ServiceAccount(t, k.namespace, "stranger")
	everyone := k.resourceRights(t, stranger)
	got := map[string]string{}
	for res, verbs := range k.resourceRights(t, k.acct) {
		if everyone[res] != verbs {
			got[res] = verbs
		}
	}
	want := map[string]string{}
	for _, r := range podevent.Rules() {
		for _, res := range r.Resources {
			want[res] = "[" + strings.Join(r.Verbs, " ") + "]"
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("beyond what everyone may do, the account may %v; want exactly %v", got, want)
	}
}

// resourceRights runs `kubectl auth can-i --list` as acct in the
// namespace and returns the verbs ("[create patch]") by resource.
func (k *k8s) resourceRights(t *testing.T, acct apiservertest.Account) map[string]string {
	t.Helper()
	out, err := k.c.RunKubectl(context.Background(), "auth", "can-i", "--list", "-n", k.namespace, "--as", acct.Username())
	if err != nil {
		t.Fatal(err)
	}
	rights := map[string]string{}
	for line := range strings.Lines(string(out)) {
		// Resources, Non-Resource URLs, Resource Names, Verbs; a line for
		// non-resource URLs has no first column.
		f := strings.Fields(line)
		if len(f) < 4 || f[0] == "Resources" || strings.HasPrefix(f[0], "[") {
			continue
		}
		if f[2] != "[]" {
			t.Errorf("%s: rights limited to resource names: %s", acct.Username(), line)
		}
		rights[f[0]] = strings.Join(f[3:], " ")
	}
	return rights
}

// TestRecordWithConfig: a Recorder given a client configuration (the
// agent's service account) records and counts as one given a kubeconfig,
// and leaves the caller's configuration as it was.
func TestRecordWithConfig(t *testing.T) {
	k := newK8s(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", k.rec.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	before := rest.CopyConfig(cfg)
	rec := &Recorder{Config: cfg, Timeout: 10 * time.Second, UserAgent: "fibguard-agent-test"}
	ev := k.event(t, "api-0")
	for i := int32(1); i <= 2; i++ {
		out, err := rec.Record(context.Background(), ev)
		if err != nil || out.Count != i {
			t.Fatalf("Record #%d: %+v, %v; want count %d", i, out, err, i)
		}
	}
	if n := len(k.eventsAbout(t, ev.Pod)); n != 1 {
		t.Errorf("%d events about the pod, want 1", n)
	}
	if cfg.UserAgent != before.UserAgent || cfg.Timeout != before.Timeout || cfg.APIPath != before.APIPath || cfg.NegotiatedSerializer != nil {
		t.Errorf("Record changed the caller's configuration: %+v", cfg)
	}
}
