package manifests

import (
	"net"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/fibguard/fibguard/internal/nodestatus"
)

// agentCommand is where hack/build-image.sh puts fibguard-agent.
const agentCommand = "/usr/local/bin/fibguard-agent"

// checkAgent: the agent container runs fibguard-agent from the installer's
// image, with only variables the agent reads, reading the host's CNI
// configuration and result cache read only, the installer's heartbeat
// from the installer's emptyDir, writing the node's verdict where the
// plugin reads it, serving its metrics on the port named metrics that its
// probes use, root without a capability.
func checkAgent(t *testing.T, o *objects) {
	t.Helper()
	needAgent(t)
	pod := &o.DaemonSet.Spec.Template.Spec
	inst, c := &pod.Containers[0], &pod.Containers[1]
	if c.Image != inst.Image || c.ImagePullPolicy != inst.ImagePullPolicy {
		t.Errorf("agent image %s (%s), the installer's %s (%s): want the same", c.Image, c.ImagePullPolicy, inst.Image, inst.ImagePullPolicy)
	}
	script, err := os.ReadFile(filepath.Join(setup.root, "hack", "build-image.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Command, []string{agentCommand}) || len(c.Args) != 0 || !strings.Contains(string(script), "-add "+agentCommand+"=") {
		t.Errorf("agent command %q args %q: want [%s], which hack/build-image.sh adds to the image", c.Command, c.Args, agentCommand)
	}
	checkAgentEnv(t, c)
	checkResources(t, c)
	checkSecurity(t, c, nil)
	checkAgentMounts(t, o)
	checkAgentMetrics(t, c)
}

// agentSetting is the agent's value of flag as the DaemonSet sets it.
func agentSetting(c *corev1.Container, flag string) string {
	f := setup.agentFlags[flag]
	for _, e := range c.Env {
		if e.Name == f.Env {
			return e.Value
		}
	}
	return f.Default
}

func checkAgentEnv(t *testing.T, c *corev1.Container) {
	t.Helper()
	seen := map[string]bool{}
	for _, e := range c.Env {
		if seen[e.Name] {
			t.Errorf("agent: environment variable %s set twice", e.Name)
		}
		seen[e.Name] = true
		if _, ok := flagOf(setup.agentFlags, e.Name); !ok {
			t.Errorf("agent: environment variable %s: fibguard-agent reads no such variable", e.Name)
		}
		if e.Name == "NODE_NAME" && (e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "spec.nodeName") {
			t.Errorf("agent: NODE_NAME %+v, want spec.nodeName", e)
		}
	}
	if !seen["NODE_NAME"] {
		t.Error("agent: no NODE_NAME: it could find neither its Node nor record Events")
	}
	if k := agentSetting(c, "kubeconfig"); k != "" {
		t.Errorf("agent: -kubeconfig %q, want the pod's service account", k)
	}
}

// checkAgentMounts: every path the agent reads or writes is mounted as it
// must be, from the volume the installer or the plugin uses for it.
func checkAgentMounts(t *testing.T, o *objects) {
	t.Helper()
	pod := &o.DaemonSet.Spec.Template.Spec
	inst, c := &pod.Containers[0], &pod.Containers[1]
	instMount := func(p string) (corev1.VolumeMount, *corev1.Volume) { return mountOf(pod, inst, p) }
	agentMount := func(p string) (corev1.VolumeMount, *corev1.Volume) { return mountOf(pod, c, p) }
	dirOrCreate := corev1.HostPathDirectoryOrCreate

	results := agentSetting(c, "results-dir")
	if m, v := agentMount(results); !m.ReadOnly || v == nil || v.HostPath == nil || v.HostPath.Path != "/var/lib/cni/results" ||
		!reflect.DeepEqual(v.HostPath.Type, &dirOrCreate) || m.MountPath != results {
		t.Errorf("agent -results-dir %s: mount %+v of %+v, want the host's /var/lib/cni/results, read only", results, m, v)
	}
	confDir := agentSetting(c, "conf-dir")
	am, av := agentMount(confDir)
	_, iv := instMount(effectiveEnv(inst, setup.flags["conf-dir"]))
	if !am.ReadOnly || av == nil || iv == nil || av.Name != iv.Name || am.MountPath != confDir {
		t.Errorf("agent -conf-dir %s: mount %+v of %+v, want the installer's conf dir volume %+v, read only", confDir, am, av, iv)
	}
	hb := agentSetting(c, "install-heartbeat-file")
	instHB := effectiveEnv(inst, setup.flags["heartbeat-file"])
	hm, hv := agentMount(hb)
	_, ihv := instMount(instHB)
	if !hm.ReadOnly || hv == nil || hv.EmptyDir == nil || ihv == nil || hv.Name != ihv.Name || path.Base(hb) != path.Base(instHB) ||
		hm.MountPath != path.Dir(hb) {
		t.Errorf("agent -install-heartbeat-file %s: mount %+v of %+v; the installer writes %s: want its emptyDir, read only", hb, hm, hv, instHB)
	}
	status := agentSetting(c, "node-status-file")
	sm, sv := agentMount(status)
	if sm.ReadOnly || sv == nil || sv.HostPath == nil || path.Join(sv.HostPath.Path, path.Base(status)) != nodestatus.DefaultPath ||
		sm.MountPath != path.Dir(status) {
		t.Errorf("agent -node-status-file %s: mount %+v of %+v, want the host's %s (where the plugin reads it), writable", status, sm, sv, nodestatus.DefaultPath)
	}
	if m, v := agentMount("/var/run/secrets/kubernetes.io/serviceaccount/token"); !m.ReadOnly || v == nil || v.Projected == nil {
		t.Errorf("agent: service account mount %+v of %+v, want the projected token, read only", m, v)
	}
	if len(c.VolumeMounts) != 5 {
		t.Errorf("agent: %d mounts, want 5: conf dir, result cache, node status, heartbeat, service account", len(c.VolumeMounts))
	}
	for _, m := range c.VolumeMounts {
		if m.SubPath != "" || m.MountPropagation != nil {
			t.Errorf("agent: mount %+v, want a plain mount", m)
		}
	}
}

// checkAgentMetrics: one port, named metrics, the one the agent listens
// on; both probes ask it for /healthz.
func checkAgentMetrics(t *testing.T, c *corev1.Container) {
	t.Helper()
	_, port, err := net.SplitHostPort(agentSetting(c, "metrics-bind-address"))
	if err != nil {
		t.Fatalf("agent -metrics-bind-address: %v", err)
	}
	want := []corev1.ContainerPort{{Name: "metrics", ContainerPort: atoi32(t, port), Protocol: corev1.ProtocolTCP}}
	if !reflect.DeepEqual(c.Ports, want) {
		t.Errorf("agent ports %+v, want %+v", c.Ports, want)
	}
	for what, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != "metrics" {
			t.Errorf("agent %s probe %+v, want GET /healthz on port metrics", what, p)
		}
	}
}

// mountOf is the mount of c under which p lies (the deepest), and its
// volume; zero and nil if none.
func mountOf(pod *corev1.PodSpec, c *corev1.Container, p string) (corev1.VolumeMount, *corev1.Volume) {
	var best corev1.VolumeMount
	for _, m := range c.VolumeMounts {
		rel, err := filepath.Rel(m.MountPath, p)
		if err == nil && (filepath.IsLocal(rel) || rel == ".") {
			if len(m.MountPath) > len(best.MountPath) {
				best = m
			}
		}
	}
	for i := range pod.Volumes {
		if best.Name != "" && pod.Volumes[i].Name == best.Name {
			return best, &pod.Volumes[i]
		}
	}
	return best, nil
}

// effectiveEnv is the value c's environment gives f, else f's default.
func effectiveEnv(c *corev1.Container, f installerFlag) string {
	for _, e := range c.Env {
		if e.Name == f.Env {
			return e.Value
		}
	}
	return f.Default
}

func atoi32(t *testing.T, s string) int32 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		t.Fatalf("port %q: %v", s, err)
	}
	return int32(n)
}
