package apiservertest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
)

// cleanupTimeout bounds each cleanup's API calls.
const cleanupTimeout = 30 * time.Second

// Account is a ServiceAccount the helper created.
type Account struct {
	Namespace string
	Name      string
	UID       types.UID
}

// Username is the account's user name in the API server, as RBAC subjects,
// `kubectl --as` and SelfSubjectReview name it.
func (a Account) Username() string {
	return "system:serviceaccount:" + a.Namespace + ":" + a.Name
}

// unsafeName matches what a namespace name may not contain.
var unsafeName = regexp.MustCompile(`[^a-z0-9-]+`)

// Namespace creates a namespace with a unique name derived from the test's
// name and deletes it, with everything in it, when the test ends. It
// creates what kube-controller-manager would, which this control plane
// lacks: the ServiceAccount "default" (without it admission refuses Pods)
// and the ConfigMap "kube-root-ca.crt".
func (c *Cluster) Namespace(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	base := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 40 {
		base = strings.TrimRight(base[:40], "-")
	}
	name := "fgt-" + base + "-" + randomSuffix(t)
	ns, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("apiservertest: creating namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := c.deleteNamespace(ctx, ns.Name); err != nil {
			t.Errorf("apiservertest: %v", err)
		}
	})
	if _, err := c.Client.CoreV1().ServiceAccounts(name).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "default"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("apiservertest: creating serviceaccount %s/default: %v", name, err)
	}
	if _, err := c.Client.CoreV1().ConfigMaps(name).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-root-ca.crt"},
		Data:       map[string]string{"ca.crt": string(c.CA)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("apiservertest: creating configmap %s/kube-root-ca.crt: %v", name, err)
	}
	return name
}

// deleteNamespace does what the namespace controller would: deletes the
// namespace, every object in it, and then the "kubernetes" finalizer, so the
// namespace is really gone rather than Terminating forever.
func (c *Cluster) deleteNamespace(ctx context.Context, name string) error {
	err := c.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("deleting namespace %s: %w", name, err)
	}
	lists, err := c.Client.Discovery().ServerPreferredNamespacedResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return fmt.Errorf("deleting namespace %s: discovering resource types: %w", name, err)
	}
	// Quiet: deleting every type draws deprecation warnings (v1 Endpoints,
	// Jobs' propagation policy) that say nothing about the test.
	quiet := rest.CopyConfig(c.Config)
	quiet.WarningHandler = rest.NoWarnings{}
	meta, err := metadata.NewForConfig(quiet)
	if err != nil {
		return fmt.Errorf("deleting namespace %s: %w", name, err)
	}
	zero := int64(0)
	var errs []error
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			errs = append(errs, fmt.Errorf("group version %q: %w", list.GroupVersion, err))
			continue
		}
		for _, r := range list.APIResources {
			if !hasVerb(r, "deletecollection") {
				continue
			}
			// Grace period 0: no kubelet will ever confirm a Pod's end.
			err := meta.Resource(gv.WithResource(r.Name)).Namespace(name).
				DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsMethodNotSupported(err) {
				errs = append(errs, fmt.Errorf("%s: %w", r.Name, err))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("deleting the contents of namespace %s: %w", name, errors.Join(errs...))
	}
	ns, err := c.Client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("deleting namespace %s: %w", name, err)
	}
	ns.Spec.Finalizers = nil
	if _, err := c.Client.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("finalizing namespace %s: %w", name, err)
	}
	return nil
}

func hasVerb(r metav1.APIResource, verb string) bool {
	for _, v := range r.Verbs {
		if v == verb {
			return true
		}
	}
	return false
}

// randomSuffix returns 6 random lowercase hex digits.
func randomSuffix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("apiservertest: %v", err)
	}
	return hex.EncodeToString(b)
}

// ServiceAccount creates a ServiceAccount in namespace; it goes with the
// namespace.
func (c *Cluster) ServiceAccount(t testing.TB, namespace, name string) Account {
	t.Helper()
	sa, err := c.Client.CoreV1().ServiceAccounts(namespace).Create(context.Background(), &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: name},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("apiservertest: creating serviceaccount %s/%s: %v", namespace, name, err)
	}
	return Account{Namespace: sa.Namespace, Name: sa.Name, UID: sa.UID}
}

// CreateClusterRole creates role (cluster-scoped) and deletes it when the
// test ends.
func (c *Cluster) CreateClusterRole(t testing.TB, role *rbacv1.ClusterRole) *rbacv1.ClusterRole {
	t.Helper()
	created, err := c.Client.RbacV1().ClusterRoles().Create(context.Background(), role, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("apiservertest: creating clusterrole %s: %v", role.Name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		err := c.Client.RbacV1().ClusterRoles().Delete(ctx, created.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("apiservertest: deleting clusterrole %s: %v", created.Name, err)
		}
	})
	return created
}

// BindClusterRole grants acct the ClusterRole clusterRole everywhere, with a
// ClusterRoleBinding deleted when the test ends.
func (c *Cluster) BindClusterRole(t testing.TB, acct Account, clusterRole string) {
	t.Helper()
	b, err := c.Client.RbacV1().ClusterRoleBindings().Create(context.Background(), &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "fgt-" + acct.Name + "-"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
		Subjects:   []rbacv1.Subject{acct.subject()},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("apiservertest: binding clusterrole %s to %s: %v", clusterRole, acct.Username(), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		err := c.Client.RbacV1().ClusterRoleBindings().Delete(ctx, b.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("apiservertest: deleting clusterrolebinding %s: %v", b.Name, err)
		}
	})
}

// BindRole grants acct a Role or ClusterRole (kind) within namespace only,
// with a RoleBinding that goes with the namespace.
func (c *Cluster) BindRole(t testing.TB, acct Account, namespace, kind, role string) {
	t.Helper()
	if kind != "Role" && kind != "ClusterRole" {
		t.Fatalf("apiservertest: BindRole: kind %q, want Role or ClusterRole", kind)
	}
	_, err := c.Client.RbacV1().RoleBindings(namespace).Create(context.Background(), &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "fgt-" + acct.Name + "-"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: role},
		Subjects:   []rbacv1.Subject{acct.subject()},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("apiservertest: binding %s %s to %s in %s: %v", kind, role, acct.Username(), namespace, err)
	}
}

func (a Account) subject() rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: a.Namespace, Name: a.Name}
}

// MinTokenRequestExpiration is the shortest lifetime the TokenRequest API
// grants (API validation: "may not specify a duration less than 10
// minutes"). Shorter-lived and already expired tokens come from MintToken.
const MinTokenRequestExpiration = 10 * time.Minute

// RequestToken asks the API server for a token of acct through the
// TokenRequest API (what kubelet does for projected service-account
// tokens), valid for expiration (at least MinTokenRequestExpiration), and
// returns it with its expiry. Bound to nothing: it stays valid until it
// expires or the ServiceAccount is deleted.
func (c *Cluster) RequestToken(t testing.TB, acct Account, expiration time.Duration) (string, time.Time) {
	t.Helper()
	secs := int64(expiration / time.Second)
	tr, err := c.Client.CoreV1().ServiceAccounts(acct.Namespace).CreateToken(context.Background(), acct.Name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("apiservertest: requesting a token for %s: %v", acct.Username(), err)
	}
	return tr.Status.Token, tr.Status.ExpirationTimestamp.Time
}

// Pod creates a Pod in namespace that exists only as an API object: no
// scheduler places it and no kubelet runs it. It goes with the namespace.
func (c *Cluster) Pod(t testing.TB, namespace, name string) *corev1.Pod {
	t.Helper()
	noToken := false
	pod, err := c.Client.CoreV1().Pods(namespace).Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: &noToken,
			Containers:                   []corev1.Container{{Name: "pause", Image: "localhost/fibguard/pause:test"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("apiservertest: creating pod %s/%s: %v", namespace, name, err)
	}
	return pod
}

// WriteKubeconfig writes a kubeconfig for the API server that
// authenticates with token, mode 0600, into the test's temporary directory
// and returns its path.
func (c *Cluster) WriteKubeconfig(t testing.TB, token string) string {
	t.Helper()
	return WriteKubeconfigFile(t, c.Server, c.CA, token)
}

// KubeconfigFor returns a kubeconfig for the API server that authenticates
// with token and verifies the server against the cluster's CA.
func (c *Cluster) KubeconfigFor(token string) []byte {
	return Kubeconfig(c.Server, c.CA, token)
}

// WriteKubeconfigFile writes Kubeconfig(server, caPEM, token), mode 0600,
// into the test's temporary directory and returns its path: for tests that
// talk to a server of their own (httptest, a forwarder) as well as to a
// Cluster.
func WriteKubeconfigFile(t testing.TB, server string, caPEM []byte, token string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, Kubeconfig(server, caPEM, token), 0o600); err != nil {
		t.Fatalf("apiservertest: %v", err)
	}
	return path
}

// Kubeconfig returns a kubeconfig for server that authenticates with token
// and verifies the server against the PEM certificates caPEM (none: no
// CA, as for a plain-HTTP server).
func Kubeconfig(server string, caPEM []byte, token string) []byte {
	type named struct {
		Name    string         `json:"name"`
		Cluster map[string]any `json:"cluster,omitempty"`
		User    map[string]any `json:"user,omitempty"`
		Context map[string]any `json:"context,omitempty"`
	}
	cluster := map[string]any{"server": server}
	if caPEM != nil {
		cluster["certificate-authority-data"] = base64.StdEncoding.EncodeToString(caPEM)
	}
	// JSON is YAML, and client-go reads either.
	data, err := json.MarshalIndent(map[string]any{
		"apiVersion":      "v1",
		"kind":            "Config",
		"clusters":        []named{{Name: "fibguard-test", Cluster: cluster}},
		"users":           []named{{Name: "fibguard-test", User: map[string]any{"token": token}}},
		"contexts":        []named{{Name: "fibguard-test", Context: map[string]any{"cluster": "fibguard-test", "user": "fibguard-test"}}},
		"current-context": "fibguard-test",
	}, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("apiservertest: encoding a kubeconfig: %v", err)) // maps of strings always encode
	}
	return append(data, '\n')
}
