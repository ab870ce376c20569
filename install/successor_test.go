package install

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fibguard/fibguard/internal/apiservertest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := apiservertest.Down(); err != nil {
		fmt.Fprintf(os.Stderr, "install: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// successorWorld is a namespace on a real API server with the installer's
// account bound to a Role of SuccessorRules, a DaemonSet, and the
// account's token in a service-account directory. No controller runs:
// the objects are only what the test makes them.
type successorWorld struct {
	c     *apiservertest.Cluster
	ns    string
	ds    *appsv1.DaemonSet
	saDir string
}

func newSuccessorWorld(t *testing.T, bound bool) *successorWorld {
	t.Helper()
	c := apiservertest.Start(t)
	w := &successorWorld{c: c, ns: c.Namespace(t)}
	acct := c.ServiceAccount(t, w.ns, "installer")
	var rules []rbacv1.PolicyRule
	for _, r := range SuccessorRules() {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: r.APIGroups, Resources: r.Resources, Verbs: r.Verbs})
	}
	ctx := context.Background()
	if _, err := c.Client.RbacV1().Roles(w.ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "fibguard-install"}, Rules: rules}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if bound {
		c.BindRole(t, acct, w.ns, "Role", "fibguard-install")
	}
	labels := map[string]string{"app": "fibguard"}
	ds, err := c.Client.AppsV1().DaemonSets(w.ns).Create(ctx, &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "fibguard"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "install", Image: "localhost/fibguard:test"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.ds = ds
	token, _ := c.RequestToken(t, acct, apiservertest.MinTokenRequestExpiration)
	w.saDir = t.TempDir()
	for name, content := range map[string]string{"token": token, "ca.crt": string(c.CA), "namespace": w.ns} {
		if err := os.WriteFile(filepath.Join(w.saDir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// pod creates a pod, controlled by the DaemonSet when owned.
func (w *successorWorld) pod(t *testing.T, name string, owned bool) {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "install", Image: "localhost/fibguard:test"}}},
	}
	if owned {
		yes := true
		pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: w.ds.Name, UID: w.ds.UID, Controller: &yes}}
		// As the DaemonSet controller labels its pods.
		pod.Labels = map[string]string{templateGenerationLabel: strconv.FormatInt(w.ds.Generation, 10)}
	}
	if _, err := w.c.Client.CoreV1().Pods(w.ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (w *successorWorld) ask(t *testing.T, pod string) (bool, string, error) {
	t.Helper()
	return Successor{Server: w.c.Server, ServiceAccountDir: w.saDir, Pod: pod, Settle: 500 * time.Millisecond}.Expected(context.Background())
}

// TestSuccessorUpdate: a DaemonSet whose template changed after the pod was
// made is being rolled out; a DaemonSet deleted while the installer waits
// for the answer to settle is a removal.
func TestSuccessorUpdate(t *testing.T) {
	w := newSuccessorWorld(t, true)
	w.pod(t, "fibguard-a", true)
	ctx := context.Background()
	ds := w.ds.DeepCopy()
	ds.Spec.Template.Spec.Containers[0].Image = "localhost/fibguard:test-2"
	if _, err := w.c.Client.AppsV1().DaemonSets(w.ns).Update(ctx, ds, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	keep, why, err := w.ask(t, "fibguard-a")
	if err != nil || !keep || !strings.Contains(why, "being updated") {
		t.Errorf("DaemonSet updated: keep=%v (%s, %v), want true for an update", keep, why, err)
	}

	w2 := newSuccessorWorld(t, true)
	w2.pod(t, "fibguard-b", true)
	go func() {
		time.Sleep(300 * time.Millisecond)
		if err := w2.c.Client.AppsV1().DaemonSets(w2.ns).Delete(ctx, w2.ds.Name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("deleting the DaemonSet: %v", err)
		}
	}()
	keep, why, err = Successor{Server: w2.c.Server, ServiceAccountDir: w2.saDir, Pod: "fibguard-b", Settle: 3 * time.Second}.Expected(ctx)
	if err != nil || keep {
		t.Errorf("DaemonSet deleted while settling: keep=%v (%s, %v), want false", keep, why, err)
	}
}

func TestSuccessorExpected(t *testing.T) {
	w := newSuccessorWorld(t, true)
	w.pod(t, "fibguard-a", true)
	w.pod(t, "loose", false)

	keep, why, err := w.ask(t, "fibguard-a")
	if err != nil || !keep {
		t.Errorf("pod of a DaemonSet that remains: keep=%v (%s, %v), want true", keep, why, err)
	}
	for _, pod := range []string{"loose", "no-such-pod"} {
		keep, why, err := w.ask(t, pod)
		if err != nil || keep {
			t.Errorf("pod %s: keep=%v (%s, %v), want false with no error", pod, keep, why, err)
		}
	}

	// A finalizer holds the DaemonSet while it is being deleted, as a
	// foreground deletion does.
	ctx := context.Background()
	w.ds.Finalizers = []string{"fibguard.test/hold"}
	ds, err := w.c.Client.AppsV1().DaemonSets(w.ns).Update(ctx, w.ds, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.c.Client.AppsV1().DaemonSets(w.ns).Delete(ctx, ds.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	keep, why, err = w.ask(t, "fibguard-a")
	if err != nil || keep || !strings.Contains(why, "being deleted") {
		t.Errorf("DaemonSet being deleted: keep=%v (%s, %v), want false", keep, why, err)
	}
	ds, err = w.c.Client.AppsV1().DaemonSets(w.ns).Get(ctx, ds.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ds.Finalizers = nil
	if _, err := w.c.Client.AppsV1().DaemonSets(w.ns).Update(ctx, ds, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	keep, why, err = w.ask(t, "fibguard-a")
	if err != nil || keep {
		t.Errorf("DaemonSet deleted: keep=%v (%s, %v), want false", keep, why, err)
	}
}

// TestSuccessorRevoked: an account whose rights were taken away (its
// binding deleted with the rest of the installation) is refused, which
// means removal.
func TestSuccessorRevoked(t *testing.T) {
	w := newSuccessorWorld(t, false)
	w.pod(t, "fibguard-a", true)
	keep, why, err := w.ask(t, "fibguard-a")
	if err != nil || keep || !strings.Contains(why, "HTTP 403") {
		t.Errorf("account without the Role: keep=%v (%s, %v), want false after HTTP 403", keep, why, err)
	}
}

// TestSuccessorUnreachable: no API server answers; Expected says it cannot
// tell rather than guessing.
func TestSuccessorUnreachable(t *testing.T) {
	w := newSuccessorWorld(t, true)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	keep, _, err := Successor{Server: "https://" + addr, ServiceAccountDir: w.saDir, Pod: "fibguard-a"}.Expected(context.Background())
	if err == nil || keep {
		t.Errorf("closed port: keep=%v, err %v; want an error", keep, err)
	}
	_, _, err = Successor{Server: w.c.Server, ServiceAccountDir: t.TempDir(), Pod: "fibguard-a"}.Expected(context.Background())
	if err == nil {
		t.Error("empty service account directory: want an error")
	}
}
