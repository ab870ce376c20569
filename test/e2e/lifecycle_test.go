//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The install lifecycle as an operator lives it: the primary CNI rewriting
// its file, the node's daemons restarting, an upgrade rolled out while pods
// come and go.

// reinsertLimit is how long a node may run the primary's rewritten
// conflist without fibguard.
const reinsertLimit = 2 * time.Second

// primaryRewrite: the primary CNI writes its conflist anew (as Calico,
// Cilium and flannel do when they restart); the installer puts fibguard
// back within reinsertLimit, every time.
func primaryRewrite(ctx context.Context, t *testing.T, cl *cluster, _ installer) {
	healthy := cl.healthyNetwork()
	if err := cl.waitChained(ctx, "enforce"); err != nil {
		t.Fatal(err)
	}
	var worst time.Duration
	for i := range 5 {
		start := time.Now()
		if err := cl.writePrimary(ctx, healthy.conflist(cl.IPAMDir)); err != nil {
			t.Fatal(err)
		}
		err := eventually(ctx, 20*time.Millisecond, 30*time.Second, func(ctx context.Context) error {
			content, err := cl.readPrimary(ctx)
			if err != nil {
				return err
			}
			if _, ok, err := fibguardEntry(content); err != nil {
				return err
			} else if !ok {
				return errors.New("not chained")
			}
			return nil
		})
		took := time.Since(start)
		if err != nil {
			t.Fatalf("rewrite %d: fibguard not back: %v", i+1, err)
		}
		worst = max(worst, took)
	}
	if worst > reinsertLimit {
		t.Errorf("fibguard was back after at most %v, want within %v", worst, reinsertLimit)
	}
	t.Logf("after 5 rewrites of the primary conflist, fibguard was back within %v each time", worst.Round(time.Millisecond))
	misplacedEntry(ctx, t, cl, healthy)
}

// misplacedEntry: a primary conflist that lists fibguard first (a
// hand-made or copied configuration) would fail every ADD with "no
// prevResult"; the installer moves fibguard last, and pods run.
func misplacedEntry(ctx context.Context, t *testing.T, cl *cluster, n network) {
	var doc map[string]any
	if err := json.Unmarshal(n.conflist(cl.IPAMDir), &doc); err != nil {
		t.Fatal(err)
	}
	plugins, ok := doc["plugins"].([]any)
	if !ok {
		t.Fatalf("the healthy network's conflist has no plugins list: %v", doc)
	}
	doc["plugins"] = append([]any{map[string]any{"type": "fibguard", "mode": "warn"}}, plugins...)
	first, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.writePrimary(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := cl.waitChained(ctx, "enforce"); err != nil {
		t.Fatalf("a primary listing fibguard first: %v", err)
	}
	if err := cl.waitLoaded(ctx, n, true); err != nil {
		t.Fatal(err)
	}
	cl.createProbe(ctx, t, "after-misplaced")
	ip := cl.waitRunning(ctx, t, "after-misplaced")
	if err := cl.reachable(ctx, "after-misplaced", ip); err != nil {
		t.Errorf("node → pod after fibguard was moved last: %v", err)
	}
	cl.deletePod(ctx, t, "after-misplaced")
	t.Log("a primary conflist listing fibguard first ended with fibguard last, and a pod ran")
}

// restartNode: kubelet and the container runtime restart (a node update,
// a crash): fibguard stays installed and keeps checking new pods.
func restartNode(ctx context.Context, t *testing.T, cl *cluster, _ installer) {
	start := time.Now()
	if err := cl.restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("kubelet and the runtime restarted in %v", time.Since(start).Round(time.Millisecond))
	if err := cl.waitChained(ctx, "enforce"); err != nil {
		t.Fatal(err)
	}
	if missing, err := cl.installedFiles(ctx, true); err != nil || len(missing) > 0 {
		t.Fatalf("after the restart the node lacks %v (err %v)", missing, err)
	}
	if err := cl.switchNetwork(ctx, loopbackNetwork(), true); err != nil {
		t.Fatal(err)
	}
	rejected(ctx, t, cl, "after-restart", cl.loopbackCode())
	cl.deletePod(ctx, t, "after-restart")
	if err := cl.switchNetwork(ctx, cl.healthyNetwork(), true); err != nil {
		t.Fatal(err)
	}
}

// restart runs the configured restart command.
func (c config) restart(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, c.Restart[0], c.Restart[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("restarting the node's daemons (%s): %w\n%s", strings.Join(c.Restart, " "), err, out)
	}
	return nil
}

// upgradeInterval is the pace at which pods are created during the upgrade;
// creation starts upgradeMargin before the rollout and ends upgradeMargin
// after it.
const (
	upgradeInterval = 250 * time.Millisecond
	upgradeMargin   = 2 * time.Second
)

// upgrade rolls out a second build of fibguard's image while pods are
// created continuously on a healthy network, on every node in turn. Every
// pod must run without a single failed sandbox: an ADD that failed because
// the binary was missing or partial, or because the conflist named a
// plugin that was not there, shows as kubelet's FailedCreatePodSandBox.
// fibguard must stay chained throughout on every node (the old installer
// pod leaves it in place for the new one), so no pod starts unguarded.
// Afterwards every node runs the new build.
func upgrade(ctx context.Context, t *testing.T, cl *cluster, inst installer) {
	m, ok := inst.(*manifestInstaller)
	if !ok {
		t.Skip("the upgrade rolls out a second image: FIBGUARD_E2E_INSTALL=manifests only")
	}
	before := map[string]string{}
	for _, n := range cl.all {
		if err := n.switchNetwork(ctx, n.healthyNetwork(), true); err != nil {
			t.Fatal(err)
		}
		v, err := n.pluginVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		before[n.Node] = v
	}
	stop := cl.createContinuously(ctx, t, "upgrade")
	watch := cl.watchChained(ctx)
	time.Sleep(upgradeMargin) // pods under the old build too
	start := time.Now()
	m.installImage(ctx, t, "enforce", cl.UpgradeImage)
	end := time.Now()
	time.Sleep(upgradeMargin) // and under the new one
	created := stop()
	looks, gaps := watch()
	if gaps > 0 {
		t.Errorf("fibguard was missing from a primary conflist in %d of %d looks during the rollout", gaps, looks)
	}
	t.Logf("fibguard stayed chained throughout the rollout (%d looks at the nodes' conflists, %d without it)", looks, gaps)
	during := 0
	for _, p := range created {
		if !p.at.Before(start) && !p.at.After(end) {
			during++
		}
	}
	t.Logf("rollout of %s on %d nodes took %v; %d pods created during it, %d in all (from %v before to %v after)",
		cl.UpgradeImage, len(cl.all), end.Sub(start).Round(time.Millisecond), during, len(created), upgradeMargin, upgradeMargin)
	if during < 3 {
		t.Errorf("only %d pods created during the rollout: too few to show anything", during)
	}
	var failed []string
	for _, p := range created {
		p.on.waitRunning(ctx, t, p.name)
		evs, err := p.on.podEvents(ctx, p.name)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range sandboxFailures(evs) {
			failed = append(failed, fmt.Sprintf("%s on %s: %s", p.name, p.on.Node, e.Message))
		}
	}
	if len(failed) > 0 {
		t.Errorf("%d of %d pods created during the rollout had a failed ADD:\n%s", len(failed), len(created), strings.Join(failed, "\n"))
	}
	t.Logf("%d pods created around the rollout (%d during it): all Running, %d failed ADDs", len(created), during, len(failed))
	for _, n := range cl.all {
		after, err := n.pluginVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := imageTag(cl.UpgradeImage); !strings.Contains(after, " "+want+":") {
			t.Errorf("after the upgrade node %s's plugin says %q, want version %s (before: %q)", n.Node, after, want, before[n.Node])
		}
		t.Logf("node %s's plugin before: %q; after: %q", n.Node, before[n.Node], after)
	}
	// All deleted at once, as a Deployment scaled down would be, then each
	// waited for: nothing may stay Terminating.
	for _, p := range created {
		p.on.startDelete(ctx, t, p.name)
	}
	for _, p := range created {
		p.on.waitGone(ctx, t, p.name)
	}
}

// createdPod is a pod's name, the view of the node it was pinned to, and
// when its creation was acknowledged.
type createdPod struct {
	name string
	on   *cluster
	at   time.Time
}

// createContinuously creates probe pods named prefix-N every
// upgradeInterval, on the nodes under test in turn, until the returned
// function is called; that function returns the pods created.
func (cl *cluster) createContinuously(ctx context.Context, t *testing.T, prefix string) func() []createdPod {
	t.Helper()
	var (
		pods []createdPod
		errs []error
		i    int
	)
	stop := every(ctx, upgradeInterval, func() {
		name := fmt.Sprintf("%s-%d", prefix, i)
		n := cl.all[i%len(cl.all)]
		i++
		if _, err := n.client.CoreV1().Pods(n.ns).Create(ctx, n.probe(name), metav1.CreateOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("creating pod %s on %s: %w", name, n.Node, err))
			return
		}
		pods = append(pods, createdPod{name, n, time.Now()})
	})
	return func() []createdPod {
		stop()
		for _, err := range errs {
			t.Error(err)
		}
		return pods
	}
}

// watchChained reads every node's primary conflist every 50 ms until the
// returned function is called, which returns how often it looked and how
// often fibguard was not chained.
func (cl *cluster) watchChained(ctx context.Context) func() (looks, gaps int) {
	var looks, gaps int
	stop := every(ctx, 50*time.Millisecond, func() {
		for _, n := range cl.all {
			content, err := n.readPrimary(ctx)
			if _, ok, _ := fibguardEntry(content); err == nil {
				looks++
				if !ok {
					gaps++
				}
			}
		}
	})
	return func() (int, int) {
		stop()
		return looks, gaps
	}
}

// every calls fn at once and then every interval, in a goroutine of its
// own, until ctx is done or the returned function is called; that function
// returns once fn has run for the last time, so what fn wrote is then the
// caller's to read.
func every(ctx context.Context, interval time.Duration, fn func()) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			fn()
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// pluginVersion is what the node's fibguard binary says about itself (the
// CNI "about" text, printed when no CNI command is given).
func (cl *cluster) pluginVersion(ctx context.Context) (string, error) {
	out, err := cl.onNode(ctx, nil, shellQuote(path.Join(cl.BinDir, "fibguard"))+" 2>&1 </dev/null | head -n1")
	if err != nil {
		return "", fmt.Errorf("the node's fibguard binary: %w", err)
	}
	return strings.TrimSpace(out), nil
}

// splitImage splits an image reference into its name and its tag
// ("latest" when it has none).
func splitImage(ref string) (name, tag string) {
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i], ref[i+1:]
	}
	return ref, "latest"
}

// imageTag is the tag of an image reference.
func imageTag(ref string) string {
	_, tag := splitImage(ref)
	return tag
}

// imageName is an image reference without its tag.
func imageName(ref string) string {
	name, _ := splitImage(ref)
	return name
}

// overlay writes a kustomization that is base with another image, as a
// user pins a release, and returns its directory.
func overlay(t *testing.T, base, image string) string {
	t.Helper()
	dir := t.TempDir()
	rel, err := filepath.Rel(dir, base)
	if err != nil {
		t.Fatal(err)
	}
	content := fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - %s
images:
  - name: %s
    newName: %s
    newTag: %s
`, rel, imageName(defaultImage), imageName(image), imageTag(image))
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// installerPodsReady waits until every pod of the DaemonSet is Ready.
func (cl *cluster) installerPodsReady(ctx context.Context) error {
	return eventually(ctx, 250*time.Millisecond, 2*time.Minute, func(ctx context.Context) error {
		pods, err := cl.client.CoreV1().Pods(installNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=fibguard"})
		if apierrors.IsNotFound(err) || (err == nil && len(pods.Items) == 0) {
			return fmt.Errorf("no installer pods")
		}
		if err != nil {
			return err
		}
		for _, p := range pods.Items {
			if !podReady(&p) {
				return fmt.Errorf("installer pod %s: %s", p.Name, describe(&p))
			}
		}
		return nil
	})
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
