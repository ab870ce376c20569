package apiservertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := Down(); err != nil {
		fmt.Fprintf(os.Stderr, "apiservertest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func TestServerAnswers(t *testing.T) {
	c := Start(t)
	v, err := c.Client.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("server version: %v", err)
	}
	if v.GitVersion != c.Version {
		t.Errorf("server version %q, want %q (the version ldflags)", v.GitVersion, c.Version)
	}
	body, err := c.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(context.Background())
	if err != nil || string(body) != "ok" {
		t.Errorf("/readyz = %q, %v; want ok", body, err)
	}
	// Up again is the same Cluster, and the script's up is idempotent.
	if again, err := Up(); err != nil || again != c {
		t.Errorf("second Up() = %p, %v; want %p, nil", again, err, c)
	}
	if err := c.Restart(); err != nil {
		t.Errorf("Restart while running: %v", err)
	}
	// The admin kubeconfig works with kubectl, and kubectl is the server's version.
	out, err := c.RunKubectl(context.Background(), "get", "namespace", "default", "-o", "name")
	if err != nil || strings.TrimSpace(string(out)) != "namespace/default" {
		t.Errorf("kubectl get namespace default = %q, %v", out, err)
	}
	out, err = c.RunKubectl(context.Background(), "version", "--client", "-o", "json")
	if err != nil || !strings.Contains(string(out), `"gitVersion": "`+c.Version+`"`) {
		t.Errorf("kubectl version --client = %s, %v; want %s", out, err, c.Version)
	}
}

func TestNamespace(t *testing.T) {
	c := Start(t)
	ctx := context.Background()
	var name string
	t.Run("create", func(t *testing.T) {
		name = c.Namespace(t)
		if !strings.HasPrefix(name, "fgt-testnamespace-create-") || len(name) > 63 {
			t.Errorf("namespace name %q: want fgt-testnamespace-create-<suffix>, at most 63 characters", name)
		}
		if _, err := c.Client.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{}); err != nil {
			t.Errorf("serviceaccount default: %v", err)
		}
		cm, err := c.Client.CoreV1().ConfigMaps(name).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		if err != nil || cm.Data["ca.crt"] != string(c.CA) {
			t.Errorf("configmap kube-root-ca.crt: %v, ca.crt matches: %v", err, err == nil && cm.Data["ca.crt"] == string(c.CA))
		}
		pod := c.Pod(t, name, "p1")
		if pod.UID == "" || pod.Spec.ServiceAccountName != "default" {
			t.Errorf("pod: uid %q, serviceAccountName %q; want a uid and default", pod.UID, pod.Spec.ServiceAccountName)
		}
		if _, err := c.Client.CoreV1().Events(name).Create(ctx, testEvent(name, pod.Name), metav1.CreateOptions{}); err != nil {
			t.Errorf("creating an event: %v", err)
		}
	})
	// The subtest's cleanup removed the namespace for good, contents first.
	if _, err := c.Client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s after cleanup: %v, want NotFound", name, err)
	}
	if pods, err := c.Client.CoreV1().Pods(name).List(ctx, metav1.ListOptions{}); err != nil || len(pods.Items) != 0 {
		t.Errorf("pods left in %s: %d, %v", name, len(pods.Items), err)
	}
}

func testEvent(namespace, pod string) *corev1.Event {
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: pod + "-"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: namespace, Name: pod},
		Reason:         "Testing",
		Message:        "an event in a namespace that the cleanup must remove",
		Type:           corev1.EventTypeNormal,
	}
}

// whoami asks the API server who token is.
func whoami(c *Cluster, token string) (authenticationv1.UserInfo, error) {
	cs, err := c.ClientFor(token)
	if err != nil {
		return authenticationv1.UserInfo{}, err
	}
	r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return authenticationv1.UserInfo{}, err
	}
	return r.Status.UserInfo, nil
}

func TestServiceAccountTokens(t *testing.T) {
	c := Start(t)
	ns := c.Namespace(t)
	acct := c.ServiceAccount(t, ns, "plugin")
	now := time.Now()

	requested, expires := c.RequestToken(t, acct, MinTokenRequestExpiration)
	if d := time.Until(expires); d < 9*time.Minute || d > 11*time.Minute {
		t.Errorf("requested token expires in %v, want about 10m", d)
	}
	valid, err := c.MintToken(acct, now, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	expired, err := c.MintToken(acct, now.Add(-10*time.Minute), now.Add(-ExpiryLeeway-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	withinLeeway, err := c.MintToken(acct, now.Add(-10*time.Minute), now.Add(-ExpiryLeeway/2))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, token string
		wantUser    bool // authenticated as acct, else Unauthorized
	}{
		{"TokenRequest", requested, true},
		{"minted", valid, true},
		{"minted, expired", expired, false},
		{"minted, expired within the leeway", withinLeeway, true},
		{"garbage", "not-a-token", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, err := whoami(c, tt.token)
			if !tt.wantUser {
				if !apierrors.IsUnauthorized(err) {
					t.Errorf("whoami = %+v, %v; want Unauthorized", user, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("whoami: %v", err)
			}
			if user.Username != acct.Username() || !slices.Contains(user.Groups, "system:serviceaccounts:"+ns) {
				t.Errorf("whoami = %+v, want %s in group system:serviceaccounts:%s", user, acct.Username(), ns)
			}
		})
	}

	t.Run("TokenRequest below the minimum", func(t *testing.T) {
		secs := int64((MinTokenRequestExpiration - time.Minute) / time.Second)
		_, err := c.Client.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), acct.Name,
			&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs}}, metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) {
			t.Errorf("TokenRequest for %ds: %v, want Invalid", secs, err)
		}
	})
	t.Run("MintToken refuses an empty lifetime", func(t *testing.T) {
		if _, err := c.MintToken(acct, now, now); err == nil {
			t.Error("MintToken(now, now) succeeded")
		}
	})
	// Deleting the account revokes every token it had, once the API
	// server's cache of successful token reviews (TokenCacheTTL) lets go.
	t.Run("account deleted", func(t *testing.T) {
		if err := c.Client.CoreV1().ServiceAccounts(ns).Delete(context.Background(), acct.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(TokenCacheTTL + 5*time.Second)
		for _, token := range []string{requested, valid} {
			for {
				user, err := whoami(c, token)
				if apierrors.IsUnauthorized(err) {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("whoami %v after deleting the account = %+v, %v; want Unauthorized", TokenCacheTTL+5*time.Second, user, err)
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	})
}

func TestBindings(t *testing.T) {
	c := Start(t)
	ctx := context.Background()
	ns, other := c.Namespace(t), c.Namespace(t)
	acct := c.ServiceAccount(t, ns, "reader")
	token, _ := c.RequestToken(t, acct, time.Hour)
	cs, err := c.ClientFor(token)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("listing pods without a binding: %v, want Forbidden", err)
	}

	// Not the built-in "view": it is an aggregated ClusterRole, filled in by
	// kube-controller-manager, which this control plane lacks.
	role := c.CreateClusterRole(t, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "fgt-pod-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}},
	})
	c.BindRole(t, acct, ns, "ClusterRole", role.Name)
	waitAllowed(t, cs, ns, "list", "pods", true)
	waitAllowed(t, cs, other, "list", "pods", false)
	if _, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("listing pods with the RoleBinding: %v", err)
	}

	c.BindClusterRole(t, acct, role.Name)
	waitAllowed(t, cs, other, "list", "pods", true)
	waitAllowed(t, cs, other, "list", "secrets", false)

	// kubectl sees the same through impersonation.
	out, err := c.RunKubectl(ctx, "auth", "can-i", "list", "pods", "-n", other, "--as", acct.Username())
	if err != nil || strings.TrimSpace(string(out)) != "yes" {
		t.Errorf("kubectl auth can-i list pods --as %s = %q, %v; want yes", acct.Username(), out, err)
	}
	out, err = c.RunKubectl(ctx, "auth", "can-i", "--list", "-n", other, "--as", acct.Username())
	if err != nil || !regexp.MustCompile(`(?m)^pods\s+\[\]\s+\[\]\s+\[get list\]$`).Match(out) {
		t.Errorf("kubectl auth can-i --list --as %s = %v:\n%s\nwant a line: pods [] [] [get list]", acct.Username(), err, out)
	}
}

// waitAllowed waits until the account behind cs may (or may not) do verb on
// resource in namespace: RBAC changes reach the authorizer's cache within
// moments, not at once.
func waitAllowed(t *testing.T, cs kubernetes.Interface, namespace, verb, resource string, want bool) {
	t.Helper()
	var got bool
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		r, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(context.Background(), &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: namespace, Verb: verb, Resource: resource,
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("access review: %v", err)
		}
		got = r.Status.Allowed
		if got == want || time.Now().After(deadline) {
			break
		}
	}
	if got != want {
		t.Errorf("%s %s in %s allowed = %v, want %v", verb, resource, namespace, got, want)
	}
}

func TestStopRestart(t *testing.T) {
	c := Start(t)
	ctx := context.Background()
	ns := c.Namespace(t)
	acct := c.ServiceAccount(t, ns, "survivor")
	token, _ := c.RequestToken(t, acct, time.Hour)

	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			if err := c.Restart(); err != nil {
				t.Errorf("Restart in cleanup: %v", err)
			}
		}
	})
	start := time.Now()
	_, err := c.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err == nil {
		t.Fatal("the API server answered after Stop")
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("request after Stop: %v, want connection refused", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("request after Stop took %v, want a prompt refusal", d)
	}

	if err := c.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	restarted = true
	// Same data, same keys: the namespace is there and the old token works.
	if _, err := c.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
		t.Errorf("namespace after Restart: %v", err)
	}
	if user, err := whoami(c, token); err != nil || user.Username != acct.Username() {
		t.Errorf("token from before the restart: %+v, %v", user, err)
	}
}

// TestWatchdog runs a second control plane through the script, owned by a
// `sleep` process, and checks that killing the owner stops everything.
func TestWatchdog(t *testing.T) {
	c := Start(t) // skips when the control plane cannot run at all
	if testing.Short() {
		t.Skip("starts a second control plane")
	}
	owner := exec.Command("sleep", "300")
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = owner.Process.Kill()
		_ = owner.Wait()
	})
	o := &Cluster{script: c.script, private: true}
	if err := o.privateSettings(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(o.Dir) })
	for i, kv := range o.env {
		if strings.HasPrefix(kv, "FIBGUARD_CP_OWNER_PID=") {
			o.env[i] = "FIBGUARD_CP_OWNER_PID=" + strconv.Itoa(owner.Process.Pid)
		}
	}
	t.Cleanup(func() {
		if _, err := o.run("down"); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	if _, err := o.run("up"); err != nil {
		t.Fatalf("up: %v", err)
	}
	pids := map[string]int{}
	for _, name := range []string{"etcd", "kube-apiserver", "watchdog"} {
		data, err := os.ReadFile(filepath.Join(o.Dir, name+".pid"))
		if err != nil {
			t.Fatal(err)
		}
		if pids[name], err = strconv.Atoi(strings.TrimSpace(string(data))); err != nil {
			t.Fatal(err)
		}
	}
	if err := owner.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = owner.Wait()

	deadline := time.Now().Add(30 * time.Second)
	for name, pid := range pids {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("%s (pid %d) still runs 30s after its owner was killed", name, pid)
		}
	}
	if _, err := os.Stat(filepath.Join(o.Dir, "etcd")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("etcd data after the watchdog's down: %v, want it removed", err)
	}
}

// alive reports whether pid runs and is not a zombie.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, after, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(after, "Z")
}
