package manifests

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/fibguard/fibguard/agent"
	"github.com/fibguard/fibguard/internal/apiservertest"
	"github.com/fibguard/fibguard/podevent"
	"github.com/fibguard/fibguard/podevent/kube"
)

// TestAppliedToAPIServer applies the base as users do, `kubectl apply -k
// manifests/base`, to a real API server, and checks the rights of the
// plugin's account there: its effective rights beyond those of an account
// without any binding are exactly podevent.Rules and agent.Rules, and its token — taken
// through the kubeconfig the installer writes — records Events with the
// plugin's own recorder but is refused everything else the plugin does
// not need.
func TestAppliedToAPIServer(t *testing.T) {
	needInstaller(t)
	o := render(t, "manifests/base")
	c := apiservertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	if out, err := c.RunKubectl(ctx, "apply", "-k", filepath.Join(setup.root, "manifests", "base")); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Cleanup(func() { deleteApplied(t, c, o) })
	checkStored(ctx, t, c, o)

	sa := apiservertest.Account{Namespace: o.ServiceAccount.Namespace, Name: o.ServiceAccount.Name}
	control := c.ServiceAccount(t, o.ServiceAccount.Namespace, "fgt-no-bindings")
	podNS := c.Namespace(t)
	want := wantCanI(t)
	for _, ns := range []string{"default", podNS} {
		extra := minus(canI(ctx, t, c, c.Kubeconfig, ns, "--as="+sa.Username()),
			canI(ctx, t, c, c.Kubeconfig, ns, "--as="+control.Username()))
		if !slices.Equal(extra, want) {
			t.Errorf("in namespace %s, kubectl auth can-i --list --as=%s shows, beyond what an account without bindings may do:\n  %s\nwant exactly:\n  %s",
				ns, sa.Username(), strings.Join(extra, "\n  "), strings.Join(want, "\n  "))
		}
	}

	// The account's token as a node gets it: projected into the installer's
	// pod, and copied by the installer into the plugin's kubeconfig.
	token, _ := c.RequestToken(t, sa, time.Hour)
	n := newNode(t, &o.DaemonSet, "node-1")
	n.writeServiceAccount(t, token, c.CA, sa.Namespace)
	host, port := splitHostPort(t, c.Server)
	p := n.start(t, host, port)
	p.waitReady(t)
	kc, ok := n.entry(t)["kubeconfig"].(string)
	if !ok {
		t.Fatalf("fibguard's entry names no kubeconfig: %v", n.entry(t))
	}
	kubeconfig := n.onHost(kc)

	// The token's identity, not an impersonation, shows the same rights.
	if got, imp := canI(ctx, t, c, kubeconfig, podNS), canI(ctx, t, c, c.Kubeconfig, podNS, "--as="+sa.Username()); !slices.Equal(got, imp) {
		t.Errorf("kubectl auth can-i --list with the plugin's kubeconfig:\n  %s\nwith --as=%s:\n  %s",
			strings.Join(got, "\n  "), sa.Username(), strings.Join(imp, "\n  "))
	}

	pod := c.Pod(t, podNS, "victim")
	recordTwice(ctx, t, kubeconfig, pod)
	checkForbidden(ctx, t, clientFrom(t, kubeconfig), c, pod)
}

// checkStored reads the applied objects back: the API server accepted
// them as rendered.
func checkStored(ctx context.Context, t *testing.T, c *apiservertest.Cluster, o *objects) {
	t.Helper()
	cs := c.Client
	if _, err := cs.CoreV1().Namespaces().Get(ctx, o.Namespace.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("namespace: %v", err)
	}
	if _, err := cs.CoreV1().ServiceAccounts(o.ServiceAccount.Namespace).Get(ctx, o.ServiceAccount.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("serviceaccount: %v", err)
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Get(ctx, o.ClusterRoleBinding.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("clusterrolebinding: %v", err)
	}
	role, err := cs.RbacV1().ClusterRoles().Get(ctx, o.ClusterRole.Name, metav1.GetOptions{})
	if err != nil {
		t.Errorf("clusterrole: %v", err)
	} else if !reflect.DeepEqual(role.Rules, o.ClusterRole.Rules) {
		t.Errorf("the stored ClusterRole has rules %+v, the manifest %+v", role.Rules, o.ClusterRole.Rules)
	}
	ds, err := cs.AppsV1().DaemonSets(o.DaemonSet.Namespace).Get(ctx, o.DaemonSet.Name, metav1.GetOptions{})
	if err != nil {
		t.Errorf("daemonset: %v", err)
	} else if ds.Spec.Template.Spec.PriorityClassName != "system-node-critical" {
		t.Errorf("the stored DaemonSet has priority class %q", ds.Spec.Template.Spec.PriorityClassName)
	}
}

// deleteApplied removes what `kubectl apply -k` created. Without a
// namespace controller the namespace stays Terminating until its contents
// are deleted and its finalizer removed, which is what this does in its
// place.
func deleteApplied(t *testing.T, c *apiservertest.Cluster, o *objects) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := c.RunKubectl(ctx, "delete", "--wait=false", "--ignore-not-found", "-k", filepath.Join(setup.root, "manifests", "base")); err != nil {
		t.Errorf("%v\n%s", err, out)
	}
	ns := o.Namespace.Name
	zero := int64(0)
	if err := c.Client.CoreV1().ServiceAccounts(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{}); err != nil {
		t.Errorf("deleting the service accounts of %s: %v", ns, err)
	}
	got, err := c.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return
	}
	if err != nil {
		t.Errorf("namespace %s: %v", ns, err)
		return
	}
	got.Spec.Finalizers = nil
	if _, err := c.Client.CoreV1().Namespaces().Finalize(ctx, got, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("finalizing namespace %s: %v", ns, err)
	}
}

// canI runs `kubectl auth can-i --list` in namespace with kubeconfig and
// returns its rows with their whitespace normalised: "RESOURCES
// [NON-RESOURCE-URLS] [RESOURCE-NAMES] [VERBS]".
func canI(ctx context.Context, t *testing.T, c *apiservertest.Cluster, kubeconfig, namespace string, extra ...string) []string {
	t.Helper()
	args := append([]string{"--kubeconfig", kubeconfig, "auth", "can-i", "--list", "--no-headers", "-n", namespace}, extra...)
	out, err := exec.CommandContext(ctx, c.Kubectl, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var rows []string
	for line := range strings.Lines(string(out)) {
		if row := strings.Join(strings.Fields(line), " "); row != "" {
			rows = append(rows, row)
		}
	}
	slices.Sort(rows)
	return rows
}

// minus returns the rows of a that are not in b.
func minus(a, b []string) []string {
	var out []string
	for _, r := range a {
		if !slices.Contains(b, r) {
			out = append(out, r)
		}
	}
	return out
}

// wantCanI is how kubectl lists podevent.Rules and agent.Rules: one row per resource
// ("events" for the core group, "name.group" otherwise) with its verbs.
func wantCanI(t *testing.T) []string {
	t.Helper()
	perms, err := expand(append(podevent.Rules(), agent.Rules()...))
	if err != nil {
		t.Fatal(err)
	}
	verbs := map[string][]string{}
	for _, p := range perms {
		res := p.resource
		if p.group != "" {
			res += "." + p.group
		}
		verbs[res] = append(verbs[res], p.verb)
	}
	var rows []string
	for res, vs := range verbs {
		rows = append(rows, fmt.Sprintf("%s [] [] [%s]", res, strings.Join(vs, " ")))
	}
	slices.Sort(rows)
	return rows
}

// clientFrom builds a clientset from a kubeconfig file, as the plugin
// reads its own.
func clientFrom(t *testing.T, kubeconfig string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatalf("reading %s: %v", kubeconfig, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// recordTwice records the plugin's Event for pod twice with the plugin's
// own recorder and the installer's kubeconfig, with the pod's UID, as the
// runtimes pass it in K8S_POD_UID: create the Event, patch it — the
// account needs no right on pods. Then, as for a runtime that does not
// pass the UID, without it: the account may not get the pod, and the
// recorder says so, naming the option; nothing is recorded.
func recordTwice(ctx context.Context, t *testing.T, kubeconfig string, pod *corev1.Pod) {
	t.Helper()
	rec := &kube.Recorder{Kubeconfig: kubeconfig, Timeout: 30 * time.Second, UserAgent: "fibguard-manifests-test"}
	ev := podevent.Event{
		Pod:     podevent.Pod{Namespace: pod.Namespace, Name: pod.Name, UID: string(pod.UID)},
		Reason:  podevent.ReasonRejected,
		Message: "FG001 pod IP 127.16.0.2 is unreachable from the host",
		Action:  "ADD",
		Node:    "node-1",
	}
	for want := int32(1); want <= 2; want++ {
		ev.Time = time.Now()
		out, err := rec.Record(ctx, ev)
		if err != nil {
			t.Fatalf("recording the Event with the installer's kubeconfig (time %d): %v", want, err)
		}
		if out.Count != want {
			t.Errorf("Event %s has count %d after %d recordings", out.Name, out.Count, want)
		}
	}
	ev.Pod.UID, ev.Reason = "", podevent.ReasonWarning
	out, err := rec.Record(ctx, ev)
	if err == nil || !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "K8S_POD_UID") {
		t.Errorf("recording without the pod's UID and without pods get: %+v, %v; want a 403 naming K8S_POD_UID", out, err)
	}
}

// checkForbidden: with the plugin's token, what the plugin does is
// allowed and a sample of what it does not do is refused with 403.
func checkForbidden(ctx context.Context, t *testing.T, cs kubernetes.Interface, c *apiservertest.Cluster, pod *corev1.Pod) {
	t.Helper()
	ns := pod.Namespace
	if _, err := c.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "fgt-secret"}, StringData: map[string]string{"k": "v"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	event := func(name string) *corev1.Event {
		now := metav1.Now()
		return &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: name, Namespace: ns},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: ns, Name: pod.Name, UID: pod.UID},
			Reason:         podevent.ReasonRejected, Message: "probe", Type: corev1.EventTypeWarning,
			Source: corev1.EventSource{Component: "fibguard", Host: "node-1"}, Count: 1,
			FirstTimestamp: now, LastTimestamp: now,
		}
	}
	core := cs.CoreV1()
	calls := []struct {
		name    string
		allowed bool
		call    func() error
	}{
		{"create event", true, func() error {
			_, err := core.Events(ns).Create(ctx, event("fgt-allowed"), metav1.CreateOptions{})
			return err
		}},
		{"patch event", true, func() error {
			_, err := core.Events(ns).Patch(ctx, "fgt-allowed", types.MergePatchType, []byte(`{"count":2}`), metav1.PatchOptions{})
			return err
		}},
		// Only with the pods-get option (podevent.PodsGetRules).
		{"get pod", false, func() error { _, err := core.Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{}); return err }},

		{"get event", false, func() error { _, err := core.Events(ns).Get(ctx, "fgt-allowed", metav1.GetOptions{}); return err }},
		{"list events", false, func() error { _, err := core.Events(ns).List(ctx, metav1.ListOptions{}); return err }},
		{"update event", false, func() error {
			_, err := core.Events(ns).Update(ctx, event("fgt-allowed"), metav1.UpdateOptions{})
			return err
		}},
		{"delete event", false, func() error { return core.Events(ns).Delete(ctx, "fgt-allowed", metav1.DeleteOptions{}) }},
		{"create events.k8s.io event", false, func() error {
			_, err := cs.EventsV1().Events(ns).Create(ctx, &eventsv1.Event{
				ObjectMeta: metav1.ObjectMeta{Name: "fgt-v1", Namespace: ns}, EventTime: metav1.NowMicro(),
				ReportingController: "fibguard", ReportingInstance: "node-1", Action: "ADD", Reason: "PodNetworkRejected", Type: "Warning",
				Regarding: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: ns, Name: pod.Name, UID: pod.UID},
			}, metav1.CreateOptions{})
			return err
		}},
		{"list pods", false, func() error { _, err := core.Pods(ns).List(ctx, metav1.ListOptions{}); return err }},
		{"list pods in every namespace", false, func() error { _, err := core.Pods("").List(ctx, metav1.ListOptions{}); return err }},
		{"patch pod", false, func() error {
			_, err := core.Pods(ns).Patch(ctx, pod.Name, types.MergePatchType, []byte(`{"metadata":{"labels":{"a":"b"}}}`), metav1.PatchOptions{})
			return err
		}},
		{"delete pod", false, func() error { return core.Pods(ns).Delete(ctx, pod.Name, metav1.DeleteOptions{}) }},
		{"get secret", false, func() error { _, err := core.Secrets(ns).Get(ctx, "fgt-secret", metav1.GetOptions{}); return err }},
		{"list secrets", false, func() error { _, err := core.Secrets(ns).List(ctx, metav1.ListOptions{}); return err }},
		{"get node", false, func() error { _, err := core.Nodes().Get(ctx, "node-1", metav1.GetOptions{}); return err }},
		{"list configmaps", false, func() error { _, err := core.ConfigMaps(ns).List(ctx, metav1.ListOptions{}); return err }},
		{"get serviceaccount", false, func() error {
			_, err := core.ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
			return err
		}},
	}
	for _, call := range calls {
		err := call.call()
		switch {
		case call.allowed && err != nil:
			t.Errorf("%s: %v; the plugin needs it", call.name, err)
		case !call.allowed && !apierrors.IsForbidden(err):
			t.Errorf("%s: %v, want 403 Forbidden", call.name, err)
		}
	}
}
