package manifests

import (
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/fibguard/fibguard/agent"
	"github.com/fibguard/fibguard/install"
	"github.com/fibguard/fibguard/internal/netconf"
	"github.com/fibguard/fibguard/podevent"
)

// variants are the kustomizations users apply, with the plugin mode each
// must configure.
var variants = []struct {
	name, dir, mode string
	podsGet         bool // the plugin's account may get pods (the option)
}{
	{"base", "manifests/base", string(netconf.ModeEnforce), false},
	{"warn", "manifests/overlays/warn", string(netconf.ModeWarn), false},
	{"example", "manifests/examples/cluster-ranges", string(netconf.ModeWarn), false},
	{"pods-get", "manifests/overlays/pods-get", string(netconf.ModeEnforce), true},
}

// The names docs/install.md tells users to look for.
const (
	namespace = "fibguard-system"
	image     = "ghcr.io/fibguard/fibguard:v0.1.0"
)

func TestRendered(t *testing.T) {
	needInstaller(t)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			o := render(t, v.dir)
			t.Run("Namespace", func(t *testing.T) { checkNamespace(t, o) })
			t.Run("RBAC", func(t *testing.T) { checkRBAC(t, o, v.podsGet) })
			t.Run("DaemonSet", func(t *testing.T) { checkDaemonSet(t, o, v.mode) })
		})
	}
}

// TestOverlayChangesOnlyMode: the warn overlay is the base with another
// mode, nothing else.
func TestOverlayChangesOnlyMode(t *testing.T) {
	base, warn := render(t, "manifests/base"), render(t, "manifests/overlays/warn")
	if !reflect.DeepEqual(base.Namespace, warn.Namespace) || !reflect.DeepEqual(base.ServiceAccount, warn.ServiceAccount) ||
		!reflect.DeepEqual(base.ClusterRole, warn.ClusterRole) || !reflect.DeepEqual(base.ClusterRoleBinding, warn.ClusterRoleBinding) {
		t.Errorf("the overlay changes more than the DaemonSet")
	}
	be, we := envByName(t, &base.DaemonSet), envByName(t, &warn.DaemonSet)
	be["FIBGUARD_MODE"], we["FIBGUARD_MODE"] = corev1.EnvVar{}, corev1.EnvVar{}
	if !reflect.DeepEqual(be, we) {
		t.Errorf("the overlay changes environment variables other than FIBGUARD_MODE:\nbase %v\nwarn %v", be, we)
	}
	bd, wd := base.DaemonSet.DeepCopy(), warn.DaemonSet.DeepCopy()
	bd.Spec.Template.Spec.Containers[0].Env, wd.Spec.Template.Spec.Containers[0].Env = nil, nil
	if !reflect.DeepEqual(bd, wd) {
		t.Errorf("the overlay changes the DaemonSet beyond its environment")
	}
}

func checkNamespace(t *testing.T, o *objects) {
	if o.Namespace.Name != namespace {
		t.Errorf("namespace %q, want %q", o.Namespace.Name, namespace)
	}
	// hostPath volumes and hostNetwork need the privileged Pod Security
	// level; a cluster whose default is baseline would refuse the pods.
	if got := o.Namespace.Labels["pod-security.kubernetes.io/enforce"]; got != "privileged" {
		t.Errorf("namespace label pod-security.kubernetes.io/enforce = %q, want privileged", got)
	}
	for _, obj := range []metav1.Object{&o.ServiceAccount, &o.DaemonSet} {
		if obj.GetNamespace() != o.Namespace.Name {
			t.Errorf("%s is in namespace %q, want %q", obj.GetName(), obj.GetNamespace(), o.Namespace.Name)
		}
	}
}

// permission is one verb on one resource of one API group.
type permission struct{ group, resource, verb string }

// expand lists the permissions rules grant, refusing what would grant more
// than a plain list shows: wildcards, resource names (a narrowing this
// role does not use), non-resource URLs.
func expand(rules []podevent.Rule) ([]permission, error) {
	var ps []permission
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					if g == "*" || res == "*" || v == "*" {
						return nil, fmt.Errorf("wildcard in %+v", r)
					}
					ps = append(ps, permission{g, res, v})
				}
			}
		}
	}
	slices.SortFunc(ps, func(a, b permission) int {
		return strings.Compare(a.group+"/"+a.resource+"/"+a.verb, b.group+"/"+b.resource+"/"+b.verb)
	})
	return slices.Compact(ps), nil
}

// checkGrants: a role's rules grant exactly want (named wantName), with no
// resource names or non-resource URLs, which fibguard needs nowhere.
func checkGrants(t *testing.T, role string, rules []rbacv1.PolicyRule, wantName string, want []podevent.Rule) {
	t.Helper()
	var listed []podevent.Rule
	for _, r := range rules {
		if len(r.ResourceNames) > 0 || len(r.NonResourceURLs) > 0 {
			t.Errorf("%s rule %+v: resource names or non-resource URLs; fibguard needs neither", role, r)
		}
		listed = append(listed, podevent.Rule{APIGroups: r.APIGroups, Resources: r.Resources, Verbs: r.Verbs})
	}
	got, err := expand(listed)
	if err != nil {
		t.Fatalf("%s: %v", role, err)
	}
	exact, err := expand(want)
	if err != nil {
		t.Fatalf("%s: %v", wantName, err)
	}
	if !slices.Equal(got, exact) {
		t.Errorf("%s grants %v; fibguard needs exactly %v (%s)", role, got, exact, wantName)
	}
}

// pluginRules are the rights the plugin's ClusterRole must grant: by
// default podevent.Rules, with the pods-get option PodsGetRules too.
func pluginRules(podsGet bool) (string, []podevent.Rule) {
	if podsGet {
		return "podevent.Rules and PodsGetRules", append(podevent.Rules(), podevent.PodsGetRules()...)
	}
	return "podevent.Rules", podevent.Rules()
}

func checkRBAC(t *testing.T, o *objects, podsGet bool) {
	name, want := pluginRules(podsGet)
	name, want = name+" and agent.Rules", append(want, agent.Rules()...)
	checkGrants(t, "ClusterRole "+o.ClusterRole.Name, o.ClusterRole.Rules, name, want)
	if o.ClusterRole.AggregationRule != nil {
		t.Errorf("ClusterRole %s aggregates other roles", o.ClusterRole.Name)
	}

	b := o.ClusterRoleBinding
	wantRef := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: o.ClusterRole.Name}
	if b.RoleRef != wantRef {
		t.Errorf("ClusterRoleBinding %s refers to %+v, want %+v", b.Name, b.RoleRef, wantRef)
	}
	wantSubjects := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: o.ServiceAccount.Name, Namespace: o.ServiceAccount.Namespace}}
	if !reflect.DeepEqual(b.Subjects, wantSubjects) {
		t.Errorf("ClusterRoleBinding %s binds %+v, want exactly %+v", b.Name, b.Subjects, wantSubjects)
	}
	checkInstallerRole(t, o, wantSubjects)
}

// checkInstallerRole: the installer's own Role, in its namespace, grants
// exactly install.SuccessorRules to the same account.
func checkInstallerRole(t *testing.T, o *objects, wantSubjects []rbacv1.Subject) {
	checkGrants(t, "Role "+o.Role.Name, o.Role.Rules, "install.SuccessorRules", install.SuccessorRules())
	if o.Role.Namespace != o.ServiceAccount.Namespace || o.RoleBinding.Namespace != o.ServiceAccount.Namespace {
		t.Errorf("Role in %q, RoleBinding in %q; want both in the installer's namespace %q", o.Role.Namespace, o.RoleBinding.Namespace, o.ServiceAccount.Namespace)
	}
	wantRef := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: o.Role.Name}
	if o.RoleBinding.RoleRef != wantRef || !reflect.DeepEqual(o.RoleBinding.Subjects, wantSubjects) {
		t.Errorf("RoleBinding %s: %+v to %+v, want %+v to %+v", o.RoleBinding.Name, o.RoleBinding.RoleRef, o.RoleBinding.Subjects, wantRef, wantSubjects)
	}
}

func checkDaemonSet(t *testing.T, o *objects, mode string) {
	ds := &o.DaemonSet
	pod := &ds.Spec.Template.Spec
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(ds.Spec.Template.Labels)) {
		t.Errorf("selector %v does not select the pod template's labels %v (%v)", ds.Spec.Selector, ds.Spec.Template.Labels, err)
	}

	one := intstr.FromInt32(1)
	zero := intstr.FromInt32(0)
	wantStrategy := appsv1.DaemonSetUpdateStrategy{
		Type:          appsv1.RollingUpdateDaemonSetStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &one, MaxSurge: &zero},
	}
	if !reflect.DeepEqual(ds.Spec.UpdateStrategy, wantStrategy) {
		t.Errorf("updateStrategy %+v, want RollingUpdate with maxUnavailable 1, maxSurge 0", ds.Spec.UpdateStrategy)
	}

	if pod.ServiceAccountName != o.ServiceAccount.Name {
		t.Errorf("serviceAccountName %q, want %q", pod.ServiceAccountName, o.ServiceAccount.Name)
	}
	if !pod.HostNetwork {
		t.Error("hostNetwork is false: the installer would need the pod network it guards")
	}
	if pod.PriorityClassName != "system-node-critical" {
		t.Errorf("priorityClassName %q, want system-node-critical", pod.PriorityClassName)
	}
	if want := []corev1.Toleration{{Operator: corev1.TolerationOpExists}}; !reflect.DeepEqual(pod.Tolerations, want) {
		t.Errorf("tolerations %+v, want %+v (every taint)", pod.Tolerations, want)
	}
	if want := map[string]string{corev1.LabelOSStable: "linux"}; !maps.Equal(pod.NodeSelector, want) {
		t.Errorf("nodeSelector %v, want %v", pod.NodeSelector, want)
	}
	if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds < 10 {
		t.Errorf("terminationGracePeriodSeconds %v: want at least 10s to uninstall", pod.TerminationGracePeriodSeconds)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken is not false: the default token would shadow the projected one")
	}
	if len(pod.InitContainers) != 0 || len(pod.Containers) != 2 || pod.Containers[0].Name != "install" || pod.Containers[1].Name != "agent" {
		t.Fatalf("%d init containers and containers %v, want none and install, agent", len(pod.InitContainers), containerNames(pod))
	}
	c := &pod.Containers[0]
	checkImage(t, c)
	checkResources(t, c)
	checkSecurity(t, c, []corev1.Capability{"CHOWN", "DAC_OVERRIDE"})
	checkMounts(t, o)
	checkEnv(t, ds, mode)
	checkAgent(t, o)
}

func containerNames(pod *corev1.PodSpec) []string {
	var names []string
	for _, c := range pod.Containers {
		names = append(names, c.Name)
	}
	return names
}

// checkImage compares the container with the image hack/build-image.sh
// builds: its name, its entrypoint (the probe's command), the plugin
// binary it carries where the installer looks for it.
func checkImage(t *testing.T, c *corev1.Container) {
	script, err := os.ReadFile(filepath.Join(setup.root, "hack", "build-image.sh"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^IMAGE="\$\{IMAGE:-(\S+)\}"$`).FindSubmatch(script)
	if m == nil {
		t.Fatal(`hack/build-image.sh has no line IMAGE="${IMAGE:-...}"`)
	}
	if c.Image != image || string(m[1]) != image {
		t.Errorf("image %q, hack/build-image.sh builds %q; docs/install.md says %q", c.Image, m[1], image)
	}
	if c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("imagePullPolicy %q, want IfNotPresent (an image loaded into the node is used)", c.ImagePullPolicy)
	}
	entrypoint := regexp.MustCompile(`-entrypoint (\S+)`).FindSubmatch(script)
	if entrypoint == nil {
		t.Fatal("hack/build-image.sh sets no -entrypoint")
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.Exec == nil {
		t.Fatalf("readinessProbe %+v, want an exec probe", c.ReadinessProbe)
	}
	if want := []string{string(entrypoint[1]), "-check"}; !slices.Equal(c.ReadinessProbe.Exec.Command, want) {
		t.Errorf("readinessProbe command %q, want %q", c.ReadinessProbe.Exec.Command, want)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.Exec == nil {
		t.Fatalf("livenessProbe %+v, want an exec probe", c.LivenessProbe)
	}
	if want := []string{string(entrypoint[1]), "-live"}; !slices.Equal(c.LivenessProbe.Exec.Command, want) {
		t.Errorf("livenessProbe command %q, want %q", c.LivenessProbe.Exec.Command, want)
	}
	// kubelet restarts the installer after failureThreshold failures,
	// periodSeconds apart: never before the heartbeat could be stale.
	if lp := c.LivenessProbe; time.Duration(lp.PeriodSeconds*lp.FailureThreshold)*time.Second < time.Minute {
		t.Errorf("livenessProbe restarts after %d×%ds: too eager", lp.FailureThreshold, lp.PeriodSeconds)
	}
	if len(c.Command) != 0 || len(c.Args) != 0 {
		t.Errorf("command %q args %q: the image's entrypoint, configured by the environment, is meant to run", c.Command, c.Args)
	}
	for _, b := range []string{binaryPath(t, c), eventBinaryPath(t, c)} {
		if !strings.Contains(string(script), "-add "+b+"=") {
			t.Errorf("the installer copies %s from its image, which hack/build-image.sh does not -add", b)
		}
	}
}

// binaryPath is where the installer reads the plugin binary in its image.
func binaryPath(t *testing.T, c *corev1.Container) string {
	f := setup.flags["binary"]
	for _, e := range c.Env {
		if e.Name == f.Env {
			return e.Value
		}
	}
	return f.Default
}

// eventBinaryPath is where the installer reads the event binary in its
// image: -event-binary as the DaemonSet sets it, by default next to the
// plugin binary.
func eventBinaryPath(t *testing.T, c *corev1.Container) string {
	f := setup.flags["event-binary"]
	for _, e := range c.Env {
		if e.Name == f.Env {
			return e.Value
		}
	}
	return path.Join(path.Dir(binaryPath(t, c)), install.EventBinaryName)
}

func checkResources(t *testing.T, c *corev1.Container) {
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := c.Resources.Requests[name]
		lim, okLim := c.Resources.Limits[name]
		if !okReq || !okLim || req.IsZero() {
			t.Errorf("%s: request %v, limit %v; want both", name, c.Resources.Requests, c.Resources.Limits)
			continue
		}
		if req.Cmp(lim) > 0 {
			t.Errorf("%s: request %s above limit %s", name, req.String(), lim.String())
		}
	}
}

// checkSecurity: not privileged, read-only root, root without any
// capability but add.
func checkSecurity(t *testing.T, c *corev1.Container, add []corev1.Capability) {
	sc := c.SecurityContext
	if sc == nil {
		t.Fatal("no securityContext")
	}
	isFalse := func(b *bool) bool { return b != nil && !*b }
	isTrue := func(b *bool) bool { return b != nil && *b }
	if !isFalse(sc.Privileged) {
		t.Error("privileged is not false")
	}
	if !isFalse(sc.AllowPrivilegeEscalation) {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if !isTrue(sc.ReadOnlyRootFilesystem) {
		t.Error("readOnlyRootFilesystem is not true")
	}
	if sc.RunAsUser == nil || *sc.RunAsUser != 0 {
		t.Error("runAsUser is not 0: the host's CNI directories belong to root")
	}
	want := &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: add}
	if !reflect.DeepEqual(sc.Capabilities, want) {
		t.Errorf("capabilities %+v, want %+v", sc.Capabilities, want)
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("seccompProfile %+v, want RuntimeDefault", sc.SeccompProfile)
	}
}

// checkMounts: the host's CNI directories are mounted where the installer
// looks for them, the host's conf dir is the one the plugin's entry names,
// and the service account volume is the projected token, CA and namespace
// the installer reads.
func checkMounts(t *testing.T, o *objects) {
	pod := &o.DaemonSet.Spec.Template.Spec
	c := &pod.Containers[0]
	volumes := map[string]*corev1.Volume{}
	for i := range pod.Volumes {
		volumes[pod.Volumes[i].Name] = &pod.Volumes[i]
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m
	}
	effective := func(flag string) string {
		f := setup.flags[flag]
		for _, e := range c.Env {
			if e.Name == f.Env {
				return e.Value
			}
		}
		return f.Default
	}
	dirOrCreate := corev1.HostPathDirectoryOrCreate
	for _, w := range []struct{ flag, host string }{
		{"conf-dir", effective("host-conf-dir")},
		{"bin-dir", "/opt/cni/bin"},
	} {
		path := effective(w.flag)
		m, ok := mounts[path]
		if !ok {
			t.Errorf("-%s is %s, where nothing is mounted", w.flag, path)
			continue
		}
		v := volumes[m.Name]
		if v == nil || v.HostPath == nil || v.HostPath.Path != w.host || !reflect.DeepEqual(v.HostPath.Type, &dirOrCreate) {
			t.Errorf("-%s %s: volume %+v, want hostPath %s of type DirectoryOrCreate", w.flag, path, v, w.host)
		}
		if m.ReadOnly || m.SubPath != "" || m.MountPropagation != nil {
			t.Errorf("-%s %s: mount %+v, want a plain read-write mount", w.flag, path, m)
		}
	}

	saDir := effective("service-account-dir")
	if saDir != install.DefaultServiceAccountDir {
		t.Errorf("the installer reads the service account from %s, not Kubernetes's %s", saDir, install.DefaultServiceAccountDir)
	}
	m, ok := mounts[saDir]
	if !ok || !m.ReadOnly {
		t.Fatalf("service account dir %s: mount %+v, want a read-only mount", saDir, m)
	}
	v := volumes[m.Name]
	if v == nil || v.Projected == nil || len(v.Projected.Sources) != 3 {
		t.Fatalf("service account volume %+v: want a projected volume of token, ca.crt and namespace", v)
	}
	src := v.Projected.Sources
	tok := src[0].ServiceAccountToken
	if tok == nil || tok.Path != "token" || tok.Audience != "" || tok.ExpirationSeconds == nil ||
		*tok.ExpirationSeconds < 600 || *tok.ExpirationSeconds > 3600 {
		t.Errorf("token source %+v: want path token, the API server's audience, 10 to 60 minutes", tok)
	}
	wantCA := &corev1.ConfigMapProjection{
		LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
		Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}},
	}
	if !reflect.DeepEqual(src[1].ConfigMap, wantCA) {
		t.Errorf("CA source %+v, want %+v", src[1].ConfigMap, wantCA)
	}
	ns := src[2].DownwardAPI
	if ns == nil || len(ns.Items) != 1 || ns.Items[0].Path != "namespace" || ns.Items[0].FieldRef == nil ||
		ns.Items[0].FieldRef.FieldPath != "metadata.namespace" {
		t.Errorf("namespace source %+v, want the pod's metadata.namespace as namespace", ns)
	}
	checkHeartbeatMount(t, effective("heartbeat-file"), mounts, volumes)
	if len(c.VolumeMounts) != 4 {
		t.Errorf("%d mounts, want 4: the two CNI dirs, the service account and the heartbeat's emptyDir", len(c.VolumeMounts))
	}
	if len(pod.Volumes) != 6 {
		t.Errorf("%d volumes, want 6: the installer's 4, the result cache and the node status", len(pod.Volumes))
	}
}

// checkHeartbeatMount: the liveness probe's heartbeat file is in a
// writable emptyDir of the pod (the root file system is read-only), not
// on the host.
func checkHeartbeatMount(t *testing.T, file string, mounts map[string]corev1.VolumeMount, volumes map[string]*corev1.Volume) {
	t.Helper()
	if file == "" {
		t.Fatal("no heartbeat file set: the liveness probe would always fail")
	}
	m, ok := mounts[path.Dir(file)]
	if !ok || m.ReadOnly {
		t.Fatalf("heartbeat %s: mount %+v, want a writable mount of its directory", file, m)
	}
	if v := volumes[m.Name]; v == nil || v.EmptyDir == nil {
		t.Errorf("heartbeat %s: volume %+v, want an emptyDir", file, v)
	}
}

// checkEnv: the node name from the downward API, the mode, and only
// variables the installer reads.
func checkEnv(t *testing.T, ds *appsv1.DaemonSet, mode string) {
	env := envByName(t, ds)
	if f := env["NODE_NAME"].ValueFrom; f == nil || f.FieldRef == nil || f.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("NODE_NAME %+v, want spec.nodeName", env["NODE_NAME"])
	}
	modeEnv := setup.flags["mode"].Env
	if got := env[modeEnv].Value; got != mode {
		t.Errorf("%s %q, want %q", modeEnv, got, mode)
	}
	for name := range env {
		if _, ok := flagByEnv(name); !ok && name != "NODE_NAME" {
			t.Errorf("environment variable %s: fibguard-install reads no such variable", name)
		}
	}
	// kubelet expands $(VAR) only from the service variables and the
	// variables listed earlier; anything else stays as written.
	defined := map[string]bool{"KUBERNETES_SERVICE_HOST": true, "KUBERNETES_SERVICE_PORT": true}
	for _, e := range ds.Spec.Template.Spec.Containers[0].Env {
		for _, m := range varRef.FindAllStringSubmatch(e.Value, -1) {
			if m[1] != "" && !defined[m[1]] {
				t.Errorf("%s refers to $(%s), which is not defined before it: kubelet would leave it unexpanded", e.Name, m[1])
			}
		}
		defined[e.Name] = true
	}
}

// envByName returns the installer container's environment by name; a name
// given twice fails the test.
func envByName(t *testing.T, ds *appsv1.DaemonSet) map[string]corev1.EnvVar {
	t.Helper()
	env := map[string]corev1.EnvVar{}
	for _, e := range ds.Spec.Template.Spec.Containers[0].Env {
		if _, dup := env[e.Name]; dup {
			t.Errorf("environment variable %s set twice", e.Name)
		}
		env[e.Name] = e
	}
	return env
}
