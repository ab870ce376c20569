//go:build e2e

package e2e

import (
	"context"
	"path/filepath"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/loader"
	"helm.sh/helm/v4/pkg/kube"
	"k8s.io/cli-runtime/pkg/genericclioptions"
)

// releaseName is the Helm release docs/install.md installs.
const releaseName = "fibguard"

// helmInstall: the chart, installed as docs/install.md tells Helm users
// (`helm install fibguard charts/fibguard --namespace fibguard-system
// --create-namespace`), through Helm's own install and uninstall actions:
// the DaemonSet rolls out, a 127.x pod is refused with fibguard's Event,
// and `helm uninstall` gives the primary its conflist back.
func helmInstall(ctx context.Context, t *testing.T, cl *cluster, _ installer) {
	if cl.Install != "manifests" {
		t.Skip("the chart deploys fibguard's image: FIBGUARD_E2E_INSTALL=manifests only")
	}
	for _, n := range cl.all {
		if err := n.switchNetwork(ctx, n.healthyNetwork(), false); err != nil {
			t.Fatal(err)
		}
	}
	cfg := cl.helmConfig(t)
	in := action.NewInstall(cfg)
	in.ReleaseName, in.Namespace, in.CreateNamespace = releaseName, installNamespace, true
	in.WaitStrategy = kube.HookOnlyStrategy // the rollout is waited for below, as for kubectl
	chrt, err := loader.Load(filepath.Join(cl.Repo, "charts", "fibguard"))
	if err != nil {
		t.Fatalf("loading the chart: %v", err)
	}
	values := map[string]any{"image": map[string]any{"repository": imageName(cl.Image), "tag": imageTag(cl.Image)}}
	if _, err := in.RunWithContext(ctx, chrt, values); err != nil {
		t.Fatalf("helm install: %v", err)
	}
	t.Cleanup(func() { cl.helmUninstall(context.Background(), t) })
	cl.waitRolledOut(ctx, t, "enforce")
	cl.eachNode(t, func(t *testing.T, n *cluster) {
		if err := n.switchNetwork(ctx, loopbackNetwork(), true); err != nil {
			t.Fatal(err)
		}
		rejected(ctx, t, n, "helm-loopback", n.loopbackCode())
		n.deletePod(ctx, t, "helm-loopback")
		if err := n.switchNetwork(ctx, n.healthyNetwork(), true); err != nil {
			t.Fatal(err)
		}
	})
	cl.helmUninstall(ctx, t)
	t.Run("uninstalled", func(t *testing.T) {
		cl.eachNode(t, func(t *testing.T, n *cluster) { n.checkRestored(ctx, t, n.healthyNetwork()) })
	})
}

// helmConfig is Helm's configuration for the suite's kubeconfig, with the
// release stored as Secrets in the install namespace, as the helm CLI does.
func (cl *cluster) helmConfig(t *testing.T) *action.Configuration {
	t.Helper()
	flags := genericclioptions.NewConfigFlags(false)
	ns := installNamespace
	flags.KubeConfig, flags.Namespace = &cl.Kubeconfig, &ns
	cfg := action.NewConfiguration()
	if err := cfg.Init(flags, ns, "secret"); err != nil {
		t.Fatalf("helm configuration: %v", err)
	}
	return cfg
}

// helmUninstall is `helm uninstall fibguard --namespace fibguard-system
// --wait`, then waits until fibguard is out of every node's conflist; a release
// already gone is no error.
func (cl *cluster) helmUninstall(ctx context.Context, t *testing.T) {
	t.Helper()
	un := action.NewUninstall(cl.helmConfig(t))
	un.IgnoreNotFound = true
	un.WaitStrategy = kube.StatusWatcherStrategy
	if _, err := un.Run(releaseName); err != nil {
		t.Fatalf("helm uninstall: %v", err)
	}
	if err := cl.waitChainedAll(ctx, ""); err != nil {
		t.Fatal(err)
	}
}
