package manifests

import (
	"context"
	"maps"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart"
	"helm.sh/helm/v4/pkg/kube"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/fibguard/fibguard/internal/apiservertest"
)

// TestHelmInstalledToAPIServer runs what docs/install.md tells Helm users
// to run, with Helm's own actions against a real API server: `helm install
// fibguard charts/fibguard --namespace fibguard-system --create-namespace`
// (Helm creates the bare namespace to hold the release, then its
// server-side apply adds the chart's Pod Security labels and takes the
// namespace into the release), `helm upgrade` to another mode, and `helm
// uninstall`, which deletes what it installed but keeps the namespace, as
// Helm does.
func TestHelmInstalledToAPIServer(t *testing.T) {
	needKubectl(t)
	want := renderChart(t, map[string]any{"mode": "warn"})
	c := apiservertest.Start(t)
	t.Cleanup(func() { deleteInstalled(t, c, want) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := helmConfig(t, c, namespace)

	inst := action.NewInstall(cfg)
	inst.ReleaseName, inst.Namespace, inst.CreateNamespace = "fibguard", namespace, true
	inst.WaitStrategy = kube.HookOnlyStrategy // no controller here runs the DaemonSet's pods
	if _, err := inst.RunWithContext(ctx, mustLoadChart(t), map[string]any{"mode": "warn"}); err != nil {
		t.Fatalf("helm install: %v", err)
	}
	checkInstalled(ctx, t, c, want)

	up := action.NewUpgrade(cfg)
	up.Namespace, up.WaitStrategy = namespace, kube.HookOnlyStrategy
	if _, err := up.RunWithContext(ctx, "fibguard", mustLoadChart(t), map[string]any{"mode": "enforce"}); err != nil {
		t.Fatalf("helm upgrade: %v", err)
	}
	checkInstalled(ctx, t, c, renderChart(t, nil))

	un := action.NewUninstall(cfg)
	un.WaitStrategy = kube.HookOnlyStrategy
	if _, err := un.Run("fibguard"); err != nil {
		t.Fatalf("helm uninstall: %v", err)
	}
	checkUninstalled(ctx, t, c, want)
}

// deleteInstalled removes what an install left, even a failed one: Helm's
// release records (Secrets in the namespace, which would otherwise outlive
// it in this cluster without a namespace controller), then the objects, as
// deleteApplied does.
func deleteInstalled(t *testing.T, c *apiservertest.Cluster, o *objects) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := c.Client.CoreV1().Secrets(o.Namespace.Name).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "owner=helm"})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting Helm's release records in %s: %v", o.Namespace.Name, err)
	}
	deleteApplied(t, c, o)
}

// helmConfig is Helm's configuration for the cluster's admin, with the
// release stored in namespace as Secrets, as the helm CLI does.
func helmConfig(t *testing.T, c *apiservertest.Cluster, ns string) *action.Configuration {
	t.Helper()
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig, flags.Namespace = &c.Kubeconfig, &ns
	cfg := action.NewConfiguration()
	if err := cfg.Init(flags, ns, "secret"); err != nil {
		t.Fatalf("helm configuration: %v", err)
	}
	return cfg
}

// mustLoadChart is loadChart, failing the test on an error.
func mustLoadChart(t *testing.T) chart.Charter {
	t.Helper()
	chrt, err := loadChart()
	if err != nil {
		t.Fatal(err)
	}
	return chrt
}

// checkInstalled reads back what Helm installed: the namespace with the
// chart's labels (the Pod Security ones that --create-namespace alone
// would not set) and owned by the release, and the DaemonSet's mode.
func checkInstalled(ctx context.Context, t *testing.T, c *apiservertest.Cluster, want *objects) {
	t.Helper()
	ns, err := c.Client.CoreV1().Namespaces().Get(ctx, want.Namespace.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("namespace: %v", err)
	}
	for k, v := range want.Namespace.Labels {
		if ns.Labels[k] != v {
			t.Errorf("namespace %s: label %s=%q, want %q (labels %v)", ns.Name, k, ns.Labels[k], v, ns.Labels)
		}
	}
	if got := ns.Annotations["meta.helm.sh/release-name"]; got != "fibguard" {
		t.Errorf("namespace %s: annotation meta.helm.sh/release-name %q: not the release's", ns.Name, got)
	}
	ds, err := c.Client.AppsV1().DaemonSets(want.DaemonSet.Namespace).Get(ctx, want.DaemonSet.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("daemonset: %v", err)
	}
	got, wantEnv := envByName(t, ds), envByName(t, &want.DaemonSet)
	if !maps.EqualFunc(got, wantEnv, func(a, b corev1.EnvVar) bool { return a.Value == b.Value }) {
		t.Errorf("the stored DaemonSet's environment %v, want %v", got, wantEnv)
	}
	if _, err := c.Client.RbacV1().ClusterRoles().Get(ctx, want.ClusterRole.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("clusterrole: %v", err)
	}
}

// checkUninstalled: the objects are gone, and the namespace is deleted
// (Terminating, as no namespace controller runs here to empty it).
func checkUninstalled(ctx context.Context, t *testing.T, c *apiservertest.Cluster, o *objects) {
	t.Helper()
	gone := func(what string, err error) {
		if !apierrors.IsNotFound(err) {
			t.Errorf("%s after helm uninstall: %v, want not found", what, err)
		}
	}
	_, err := c.Client.AppsV1().DaemonSets(o.DaemonSet.Namespace).Get(ctx, o.DaemonSet.Name, metav1.GetOptions{})
	gone("daemonset", err)
	_, err = c.Client.RbacV1().ClusterRoles().Get(ctx, o.ClusterRole.Name, metav1.GetOptions{})
	gone("clusterrole", err)
	_, err = c.Client.RbacV1().ClusterRoleBindings().Get(ctx, o.ClusterRoleBinding.Name, metav1.GetOptions{})
	gone("clusterrolebinding", err)
	_, err = c.Client.RbacV1().Roles(o.Role.Namespace).Get(ctx, o.Role.Name, metav1.GetOptions{})
	gone("role", err)
	// Kept, as Helm keeps namespaces (templates/namespace.yaml says why):
	// its release record is gone from it, so the uninstall completed.
	ns, err := c.Client.CoreV1().Namespaces().Get(ctx, o.Namespace.Name, metav1.GetOptions{})
	if err != nil || ns.DeletionTimestamp != nil {
		t.Errorf("namespace %s after helm uninstall: %v (deleting: %v), want kept", o.Namespace.Name, err, ns != nil && ns.DeletionTimestamp != nil)
	}
	secrets, err := c.Client.CoreV1().Secrets(o.Namespace.Name).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
	if err != nil || len(secrets.Items) != 0 {
		t.Errorf("Helm's release records in %s after helm uninstall: %v (err %v), want none", o.Namespace.Name, secrets, err)
	}
}
