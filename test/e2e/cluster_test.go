//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// cluster is the suite's view of the cluster under test, from one node:
// the scenarios run on every node under test (all), each through its own
// view.
type cluster struct {
	config
	client kubernetes.Interface
	ns     string     // the namespace the suite's pods on this node live in
	nodeIP netip.Addr // the node's InternalIP
	// nodeHostname is the node's kubernetes.io/hostname label, which the
	// pods select.
	nodeHostname string
	// podCIDR is the node's IPv4 pod CIDR (spec.podCIDRs) where the
	// cluster allocates them: the healthy network's subnet on this node,
	// so that no two nodes hand out the same pod IPs.
	podCIDR netip.Prefix
	// routeLocalnet is the node's net.ipv4.conf.{all,default}.route_localnet:
	// on when either is, as it is for a bridge the primary CNI creates.
	routeLocalnet bool
	// all are the views of every node under test, in the order given,
	// this one among them.
	all []*cluster
}

const (
	podLabel   = "fibguard-e2e"
	podTimeout = 2 * time.Minute
)

// newCluster returns the view of the first node under test; its all
// holds every node's.
func newCluster(ctx context.Context, c config) (*cluster, error) {
	rest, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", c.Kubeconfig, err)
	}
	client, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	names := c.Nodes
	switch {
	case len(names) > 0:
	case c.Node != "":
		names = []string{c.Node}
	case len(nodes.Items) == 1:
		names = []string{nodes.Items[0].Name}
	default:
		return nil, fmt.Errorf("%d nodes: set FIBGUARD_E2E_NODE or FIBGUARD_E2E_NODES", len(nodes.Items))
	}
	var all []*cluster
	for _, name := range names {
		cl := &cluster{config: c.forNode(name), client: client}
		for _, n := range nodes.Items {
			if n.Name == name {
				cl.describeNode(&n)
			}
		}
		if !cl.nodeIP.IsValid() || cl.nodeHostname == "" {
			return nil, fmt.Errorf("node %q: not in the cluster, or no IPv4 InternalIP or no %s label", name, corev1.LabelHostname)
		}
		out, err := cl.onNode(ctx, nil, "cat /proc/sys/net/ipv4/conf/all/route_localnet /proc/sys/net/ipv4/conf/default/route_localnet")
		if err != nil {
			return nil, fmt.Errorf("node %s: route_localnet: %w", name, err)
		}
		cl.routeLocalnet = strings.Contains(out, "1")
		all = append(all, cl)
	}
	for _, cl := range all {
		cl.all = all
	}
	return all[0], nil
}

// describeNode takes what the suite needs from the Node object.
func (cl *cluster) describeNode(n *corev1.Node) {
	cl.nodeHostname = n.Labels[corev1.LabelHostname]
	for _, a := range n.Status.Addresses {
		if ip, err := netip.ParseAddr(a.Address); err == nil && a.Type == corev1.NodeInternalIP && ip.Is4() {
			cl.nodeIP = ip
		}
	}
	cidrs := n.Spec.PodCIDRs
	if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
		cidrs = []string{n.Spec.PodCIDR}
	}
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil && p.Addr().Is4() && p.Bits() <= 30 {
			cl.podCIDR = p.Masked()
			break
		}
	}
}

// eachNode runs f for every node under test, as a subtest named after
// the node when there are several.
func (cl *cluster) eachNode(t *testing.T, f func(t *testing.T, n *cluster)) {
	t.Helper()
	if len(cl.all) == 1 {
		f(t, cl.all[0])
		return
	}
	for _, n := range cl.all {
		t.Run(n.Node, func(t *testing.T) { f(t, n) })
	}
}

// loopbackCode is the check that refuses a pod on loopbackNetwork on this
// node. With route_localnet off (the kernel's default) the host's own
// route to the pod is refused (EINVAL: a loopback source on the bridge),
// FG001. With it on (as on kind's nodes, for Docker's DNS at 127.0.0.11),
// the host's route is fine and the kernel refuses the pod's side instead:
// the pod's namespace keeps route_localnet off, so its route to its
// gateway fails, FG010 (and its default route, FG011).
func (cl *cluster) loopbackCode() string {
	if cl.routeLocalnet {
		return "FG010"
	}
	return "FG001"
}

// createNamespace makes a fresh namespace for one run; its deletion at the
// end takes every pod with it.
func (cl *cluster) createNamespace(ctx context.Context, t *testing.T) {
	ns, err := cl.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "fibguard-e2e-", Labels: map[string]string{"app": podLabel}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating the test namespace: %v", err)
	}
	cl.ns = ns.Name
	// Admission refuses pods until kube-controller-manager has made the
	// namespace's default ServiceAccount.
	err = eventually(ctx, 200*time.Millisecond, time.Minute, func(ctx context.Context) error {
		_, err := cl.client.CoreV1().ServiceAccounts(cl.ns).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("namespace %s: no ServiceAccount default (is kube-controller-manager running?): %v", cl.ns, err)
	}
	t.Logf("namespace %s on node %s (%s; route_localnet %v, pod CIDR %v)", cl.ns, cl.Node, cl.nodeIP, cl.routeLocalnet, cl.podCIDR)
}

// createProbe starts a probe pod, which the scheduler puts on the node.
func (cl *cluster) createProbe(ctx context.Context, t *testing.T, name string) *corev1.Pod {
	t.Helper()
	created, err := cl.client.CoreV1().Pods(cl.ns).Create(ctx, cl.probe(name), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod %s: %v", name, err)
	}
	return created
}

// probe is a probe pod as a user would write it: scheduled (to the node
// under test, by its hostname label), with its namespace's ServiceAccount;
// it tolerates the control plane's taint, so that a control-plane node
// (kind's first) is tested too.
func (cl *cluster) probe(name string) *corev1.Pod {
	grace := int64(1)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: cl.ns, Labels: map[string]string{"app": podLabel}},
		Spec: corev1.PodSpec{
			NodeSelector:                  map[string]string{corev1.LabelHostname: cl.nodeHostname},
			TerminationGracePeriodSeconds: &grace,
			Tolerations: []corev1.Toleration{{
				Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule,
			}},
			Containers: []corev1.Container{{
				Name:            "probe",
				Image:           cl.ProbeImage,
				ImagePullPolicy: corev1.PullNever,
			}},
		},
	}
}

// waitRunning waits until the pod runs and has an IP, and returns it.
func (cl *cluster) waitRunning(ctx context.Context, t *testing.T, name string) netip.Addr {
	t.Helper()
	var ip netip.Addr
	err := eventually(ctx, 250*time.Millisecond, podTimeout, func(ctx context.Context) error {
		pod, err := cl.client.CoreV1().Pods(cl.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pod.Status.Phase != corev1.PodRunning || pod.Status.PodIP == "" {
			return errors.New(describe(pod))
		}
		ip, err = netip.ParseAddr(pod.Status.PodIP)
		if err != nil {
			return stop(fmt.Errorf("pod IP: %w", err))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("pod %s not Running with an IP: %v\n%s", name, err, cl.eventsText(ctx, name))
	}
	return ip
}

// describe is a pod's phase and its container's state in a few words.
func describe(pod *corev1.Pod) string {
	s := string(pod.Status.Phase)
	for _, cs := range pod.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			s += " " + w.Reason
		}
	}
	if pod.Status.PodIP != "" {
		s += " ip " + pod.Status.PodIP
	}
	return s
}

// podEvents lists the Events about a pod.
func (cl *cluster) podEvents(ctx context.Context, name string) ([]corev1.Event, error) {
	list, err := cl.client.CoreV1().Events(cl.ns).List(ctx, metav1.ListOptions{
		FieldSelector: fields.Set{"involvedObject.kind": "Pod", "involvedObject.name": name}.String(),
	})
	if err != nil {
		return nil, fmt.Errorf("events of pod %s: %w", name, err)
	}
	return list.Items, nil
}

// eventsText renders a pod's Events as `kubectl describe` lists them, for
// failure messages.
func (cl *cluster) eventsText(ctx context.Context, name string) string {
	evs, err := cl.podEvents(ctx, name)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "events of pod %s:\n", name)
	for _, e := range evs {
		fmt.Fprintf(&b, "  %s %s x%d from %s/%s: %s\n", e.Type, e.Reason, count(e), e.Source.Component, e.ReportingController, e.Message)
	}
	return b.String()
}

// count is how many times an Event happened, in either of the API's ways.
func count(e corev1.Event) int32 {
	n := e.Count
	if e.Series != nil && e.Series.Count > n {
		n = e.Series.Count
	}
	if n == 0 {
		n = 1
	}
	return n
}

// fibguardEvents are the Events fibguard posted about a pod with a reason.
func fibguardEvents(evs []corev1.Event, reason string) []corev1.Event {
	var out []corev1.Event
	for _, e := range evs {
		if e.Reason == reason && (e.ReportingController == "fibguard" || e.Source.Component == "fibguard") {
			out = append(out, e)
		}
	}
	return out
}

// sandboxFailures are kubelet's FailedCreatePodSandBox Events about a pod.
func sandboxFailures(evs []corev1.Event) []corev1.Event {
	var out []corev1.Event
	for _, e := range evs {
		if e.Reason == "FailedCreatePodSandBox" {
			out = append(out, e)
		}
	}
	return out
}

// rejection is what an operator sees for a pod fibguard refused.
type rejection struct {
	Event   corev1.Event // fibguard's
	Kubelet corev1.Event // kubelet's FailedCreatePodSandBox
}

// waitEvent waits for fibguard's Event with reason about the pod whose
// message names code, and, when withKubelet, for kubelet's
// FailedCreatePodSandBox carrying fibguard's message; minCount is the count
// fibguard's Event must reach (retries of the same pod).
func (cl *cluster) waitEvent(ctx context.Context, t *testing.T, pod, reason, code string, withKubelet bool, minCount int32) rejection {
	t.Helper()
	var r rejection
	err := eventually(ctx, 500*time.Millisecond, 3*time.Minute, func(ctx context.Context) error {
		evs, err := cl.podEvents(ctx, pod)
		if err != nil {
			return err
		}
		ours := fibguardEvents(evs, reason)
		if len(ours) > 1 {
			return stop(fmt.Errorf("%d fibguard %s Events for pod %s, want one series", len(ours), reason, pod))
		}
		if len(ours) == 0 || !strings.Contains(ours[0].Message, code) || count(ours[0]) < minCount {
			return fmt.Errorf("%d fibguard events", len(ours))
		}
		r.Event = ours[0]
		if !withKubelet {
			return nil
		}
		for _, k := range sandboxFailures(evs) {
			if strings.Contains(k.Message, "fibguard") && strings.Contains(k.Message, code) {
				r.Kubelet = k
				return nil
			}
		}
		return errors.New("no FailedCreatePodSandBox with fibguard's message")
	})
	if err != nil {
		t.Fatalf("waiting for fibguard's %s event with %s on pod %s: %v\n%s", reason, code, pod, err, cl.eventsText(ctx, pod))
	}
	return r
}

// deletePod deletes a pod and waits until it is gone: nothing may stay
// Terminating.
func (cl *cluster) deletePod(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	cl.startDelete(ctx, t, name)
	cl.waitGone(ctx, t, name)
}

// startDelete deletes a pod without waiting for it to go.
func (cl *cluster) startDelete(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	err := cl.client.CoreV1().Pods(cl.ns).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("deleting pod %s: %v", name, err)
	}
}

// waitGone waits until a deleted pod is gone.
func (cl *cluster) waitGone(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	err := eventually(ctx, 250*time.Millisecond, podTimeout, func(ctx context.Context) error {
		pod, err := cl.client.CoreV1().Pods(cl.ns).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return err
		}
		return errors.New(describe(pod))
	})
	if err != nil {
		t.Fatalf("pod %s still there after delete: %v\n%s", name, err, cl.eventsText(ctx, name))
	}
}

// get fetches url from the node (curl), and returns the body.
func (cl *cluster) get(ctx context.Context, url string) (string, error) {
	return cl.onNode(ctx, nil, "curl -sS --fail --max-time 3 "+shellQuote(url))
}

// reachable checks that the pod answers with its own name from the node, and
// so that traffic to its IP really reaches it.
func (cl *cluster) reachable(ctx context.Context, name string, ip netip.Addr) error {
	body, err := cl.get(ctx, fmt.Sprintf("http://%s/", netip.AddrPortFrom(ip, 8080)))
	if err != nil {
		return err
	}
	if !strings.HasPrefix(body, name+" ") {
		return fmt.Errorf("GET %s:8080 from the node answered %q, not pod %s", ip, body, name)
	}
	return nil
}

// reachableFrom checks pod → pod traffic: pod from fetches to's address.
func (cl *cluster) reachableFrom(ctx context.Context, from netip.Addr, to string, toIP netip.Addr) error {
	body, err := cl.get(ctx, fmt.Sprintf("http://%s/fetch?url=http://%s/", netip.AddrPortFrom(from, 8080), netip.AddrPortFrom(toIP, 8080)))
	if err != nil {
		return err
	}
	if !strings.HasPrefix(body, to+" ") {
		return fmt.Errorf("pod at %s fetching %s:8080 got %q, not pod %s", from, toIP, body, to)
	}
	return nil
}
