package manifests

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/loader"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/release"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/diff"
	"sigs.k8s.io/yaml"

	"github.com/fibguard/fibguard/install"
	"github.com/fibguard/fibguard/internal/netconf"
)

// chartDir is the Helm chart, beside the kustomize base.
const chartDir = "charts/fibguard"

// chartVariant is the chart with the values that stand for one of the
// kustomizations users apply: it must render the same objects.
type chartVariant struct {
	name, dir, mode string
	set             map[string]any // values given with --set
	file            string         // a values file given with -f, relative to the repository root
	podsGet         bool           // the plugin's account may get pods (the option)
}

var chartVariants = []chartVariant{
	{name: "base", dir: "manifests/base", mode: string(netconf.ModeEnforce)},
	{name: "warn", dir: "manifests/overlays/warn", mode: string(netconf.ModeWarn), set: map[string]any{"mode": "warn"}},
	{name: "example", dir: "manifests/examples/cluster-ranges", mode: string(netconf.ModeWarn), file: "manifests/examples/cluster-ranges/values.yaml"},
	{name: "pods-get", dir: "manifests/overlays/pods-get", mode: string(netconf.ModeEnforce),
		set: map[string]any{"rbac": map[string]any{"podsGet": true}}, podsGet: true},
}

// values returns the variant's values as Helm reads them.
func (v *chartVariant) values(t *testing.T) map[string]any {
	t.Helper()
	if v.file == "" {
		return maps.Clone(v.set)
	}
	vals, err := common.ReadValuesFile(filepath.Join(setup.root, v.file))
	if err != nil {
		t.Fatalf("reading %s: %v", v.file, err)
	}
	return vals.AsMap()
}

// helmTemplate renders the chart as `helm template fibguard charts/fibguard
// --namespace ns` (or `helm install --dry-run=client`) does: Helm's own
// install action, which validates the values against the chart's schema
// and renders the templates and NOTES.txt without a cluster. It returns the
// manifest and the notes.
func helmTemplate(ns string, vals map[string]any) (string, string, error) {
	chrt, err := loadChart()
	if err != nil {
		return "", "", err
	}
	inst := action.NewInstall(action.NewConfiguration())
	inst.DryRunStrategy = action.DryRunClient
	inst.ReleaseName = "fibguard"
	inst.Namespace = ns
	rel, err := inst.Run(chrt, vals)
	if err != nil {
		return "", "", fmt.Errorf("rendering %s: %w", chartDir, err)
	}
	acc, err := release.NewAccessor(rel)
	if err != nil {
		return "", "", fmt.Errorf("reading the release: %w", err)
	}
	return acc.Manifest(), acc.Notes(), nil
}

// loadChart reads the chart from its directory, as `helm install
// charts/fibguard` does.
func loadChart() (chart.Charter, error) {
	chrt, err := loader.Load(filepath.Join(setup.root, chartDir))
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", chartDir, err)
	}
	return chrt, nil
}

// renderChart renders the chart into namespace and decodes its objects as
// render decodes the kustomize base's: strictly, exactly one of each kind.
func renderChart(t *testing.T, vals map[string]any) *objects {
	t.Helper()
	manifest, _, err := helmTemplate(namespace, vals)
	if err != nil {
		t.Fatal(err)
	}
	o, err := decode([]byte(manifest))
	if err != nil {
		t.Fatalf("%s: %v\n%s", chartDir, err, manifest)
	}
	return o
}

// TestHelmChartEqualsKustomize: the chart renders exactly the objects of
// the kustomization it stands for — the same fields, labels, names and
// namespaces — so the two ways to install cannot drift apart. Two things
// are compared as what they mean rather than as written: FIBGUARD_OPTIONS
// as the JSON value it is (the chart writes its keys sorted, the example
// in the order a person wrote them), and the environment as a set (a
// kustomize patch moves the variables it names to the front); the order
// that matters, a variable defined before a $(reference) to it, is
// checked on each side by checkEnv. One difference is Helm's own and
// expected: the chart's Namespace carries helm.sh/resource-policy: keep
// (helm uninstall keeps it; see templates/namespace.yaml).
func TestHelmChartEqualsKustomize(t *testing.T) {
	for _, v := range chartVariants {
		t.Run(v.name, func(t *testing.T) {
			checkChartEquals(t, render(t, v.dir), renderChart(t, v.values(t)), v.dir)
		})
	}
}

// checkChartEquals requires the chart's objects (got) to equal the
// kustomization's (want, rendered from dir), as TestHelmChartEqualsKustomize
// explains.
func checkChartEquals(t *testing.T, want, got *objects, dir string) {
	t.Helper()
	if p := got.Namespace.Annotations["helm.sh/resource-policy"]; p != "keep" {
		t.Errorf("the chart's Namespace has helm.sh/resource-policy %q, want keep", p)
	}
	delete(got.Namespace.Annotations, "helm.sh/resource-policy")
	if len(got.Namespace.Annotations) == 0 {
		got.Namespace.Annotations = nil
	}
	for _, o := range []*objects{want, got} {
		if err := normalizeEnv(&o.DaemonSet); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("helm template %s (+) differs from kubectl kustomize %s (-):\n%s", chartDir, dir, diff.Diff(want, got))
	}
}

// normalizeEnv sorts the installer's environment by name and rewrites
// FIBGUARD_OPTIONS as compact JSON with sorted keys.
func normalizeEnv(ds *appsv1.DaemonSet) error {
	env := ds.Spec.Template.Spec.Containers[0].Env
	slices.SortStableFunc(env, func(a, b corev1.EnvVar) int { return strings.Compare(a.Name, b.Name) })
	for i := range env {
		if env[i].Name != "FIBGUARD_OPTIONS" {
			continue
		}
		var v any
		if err := json.Unmarshal([]byte(env[i].Value), &v); err != nil {
			return fmt.Errorf("FIBGUARD_OPTIONS %q: %w", env[i].Value, err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("FIBGUARD_OPTIONS: %w", err)
		}
		env[i].Value = string(b)
	}
	return nil
}

// TestHelmRendered checks the chart's objects as TestRendered checks the
// kustomizations', without kubectl: the chart is rendered in process.
func TestHelmRendered(t *testing.T) {
	needInstaller(t)
	for _, v := range chartVariants {
		t.Run(v.name, func(t *testing.T) {
			o := renderChart(t, v.values(t))
			t.Run("Namespace", func(t *testing.T) { checkNamespace(t, o) })
			t.Run("RBAC", func(t *testing.T) { checkRBAC(t, o, v.podsGet) })
			t.Run("DaemonSet", func(t *testing.T) { checkDaemonSet(t, o, v.mode) })
		})
	}
}

// TestHelmLint: `helm lint --strict` finds nothing, not even a warning,
// with the defaults and with each variant's values.
func TestHelmLint(t *testing.T) {
	for _, v := range chartVariants {
		lint := action.NewLint()
		lint.Strict, lint.Namespace = true, namespace
		res := lint.Run([]string{filepath.Join(setup.root, chartDir)}, v.values(t))
		for _, m := range res.Messages {
			if m.Severity > support.InfoSev {
				t.Errorf("helm lint --strict %s (%s values): %s", chartDir, v.name, m)
			}
		}
		if len(res.Errors) > 0 || res.TotalChartsLinted != 1 {
			t.Errorf("helm lint --strict %s (%s values): %d charts linted, errors %v", chartDir, v.name, res.TotalChartsLinted, res.Errors)
		}
	}
}

// TestHelmOptions: every option lands in FIBGUARD_OPTIONS as given, next
// to the node name, as the installer parses them.
func TestHelmOptions(t *testing.T) {
	opts := map[string]any{
		"serviceCIDRs":  []any{"10.96.0.0/12", "fd00:10:96::/112"},
		"clusterCIDRs":  []any{"10.244.0.0/16"},
		"checks":        map[string]any{"FG025": "error", "FG040": "off"},
		"failurePolicy": "Ignore",
		"logFile":       "/var/log/fibguard.log",
		"logLevel":      "debug",
		"events":        "on",
		"eventTimeout":  "3s",
	}
	o := renderChart(t, map[string]any{"options": opts})
	env := envByName(t, &o.DaemonSet)
	parsed, err := install.ParseOptions(env["FIBGUARD_OPTIONS"].Value)
	if err != nil {
		t.Fatalf("the installer refuses FIBGUARD_OPTIONS: %v", err)
	}
	want := maps.Clone(opts)
	want["nodeName"] = "$(NODE_NAME)"
	got := map[string]any{}
	for k, raw := range parsed {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("option %s: %v", k, err)
		}
		got[k] = v
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FIBGUARD_OPTIONS %s:\n%s", env["FIBGUARD_OPTIONS"].Value, diff.Diff(want, got))
	}
	checkEnv(t, &o.DaemonSet, string(netconf.ModeEnforce))
}

// TestHelmSchemaOptionsArePluginFields: the schema's options are exactly
// the fields of the plugin's configuration that a user may set — all of
// NetConf but those the runtime or the installer sets (mode through
// FIBGUARD_MODE) and nodeName, which the chart sets — so a new plugin
// field cannot be missing from the chart, nor a removed one linger.
func TestHelmSchemaOptionsArePluginFields(t *testing.T) {
	schema := readSchema(t)
	var got []string
	for k := range schema.property(t, "options").Properties {
		got = append(got, k)
	}
	notOptions := []string{"cniVersion", "name", "type", "prevResult", "mode", "kubeconfig", "nodeName"}
	var want []string
	for _, f := range reflect.VisibleFields(reflect.TypeFor[netconf.NetConf]()) {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" && !slices.Contains(notOptions, name) {
			want = append(want, name)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s/values.schema.json allows the options %q; the plugin's configuration has %q", chartDir, got, want)
	}
}

// TestHelmImage: repository:tag, the tag defaulting to the chart's
// appVersion; repository@digest when a digest is set, whatever the tag.
func TestHelmImage(t *testing.T) {
	digest := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	for _, tt := range []struct {
		image map[string]any
		want  string
	}{
		{map[string]any{}, image},
		{map[string]any{"tag": "v9.9.9"}, "ghcr.io/fibguard/fibguard:v9.9.9"},
		{map[string]any{"repository": "registry.example/fibguard", "digest": digest}, "registry.example/fibguard@" + digest},
		{map[string]any{"tag": "v9.9.9", "digest": digest}, "ghcr.io/fibguard/fibguard@" + digest},
	} {
		o := renderChart(t, map[string]any{"image": tt.image})
		if got := o.DaemonSet.Spec.Template.Spec.Containers[0].Image; got != tt.want {
			t.Errorf("image values %v: image %q, want %q", tt.image, got, tt.want)
		}
	}
}

// TestHelmPodMetadata: podLabels and podAnnotations reach the pods, never
// the DaemonSet's selector.
func TestHelmPodMetadata(t *testing.T) {
	base := renderChart(t, nil)
	o := renderChart(t, map[string]any{
		"podLabels":      map[string]any{"team": "network"},
		"podAnnotations": map[string]any{"example.com/owner": "network"},
	})
	tmpl := o.DaemonSet.Spec.Template.ObjectMeta
	if tmpl.Labels["team"] != "network" || tmpl.Annotations["example.com/owner"] != "network" {
		t.Errorf("pod template metadata %+v, want the label team and the annotation example.com/owner", tmpl)
	}
	if !reflect.DeepEqual(o.DaemonSet.Spec.Selector, base.DaemonSet.Spec.Selector) {
		t.Errorf("selector %v, want %v", o.DaemonSet.Spec.Selector, base.DaemonSet.Spec.Selector)
	}
}

// TestHelmNamespaceNotCreated: with namespace.create=false the chart
// renders no Namespace, and everything else goes into the release's
// namespace — the one the user prepared.
func TestHelmNamespaceNotCreated(t *testing.T) {
	const ns = "cni-guard"
	manifest, notes, err := helmTemplate(ns, map[string]any{"namespace": map[string]any{"create": false}})
	if err != nil {
		t.Fatal(err)
	}
	o, seen, err := decodeSome([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	if seen["v1, Kind=Namespace"] || len(seen) != 6 {
		t.Errorf("objects %v: want all but the Namespace", slices.Sorted(maps.Keys(seen)))
	}
	if o.ServiceAccount.Namespace != ns || o.DaemonSet.Namespace != ns {
		t.Errorf("ServiceAccount in %q, DaemonSet in %q; want both in the release namespace %q", o.ServiceAccount.Namespace, o.DaemonSet.Namespace, ns)
	}
	checkRBAC(t, o, false)
	if !strings.Contains(notes, "kubectl label namespace "+ns+" pod-security.kubernetes.io/enforce=privileged") {
		t.Errorf("NOTES.txt does not tell how to label %s:\n%s", ns, notes)
	}
}

// TestHelmRefuses: values that would install something else than the user
// meant fail at install, saying which value is wrong.
func TestHelmRefuses(t *testing.T) {
	for _, tt := range []struct {
		name   string
		ns     string
		values map[string]any
		want   string // in the error
	}{
		{"misspelt mode", namespace, map[string]any{"mode": "enforcee"}, "at '/mode'"},
		{"options not an object", namespace, map[string]any{"options": "10.96.0.0/12"}, "at '/options'"},
		{"options a list", namespace, map[string]any{"options": []any{"serviceCIDRs"}}, "at '/options'"},
		{"misspelt option", namespace, map[string]any{"options": map[string]any{"serviceCIDR": []any{"10.96.0.0/12"}}}, "serviceCIDR"},
		{"node name in options", namespace, map[string]any{"options": map[string]any{"nodeName": "n1"}}, "nodeName"},
		{"kubeconfig in options", namespace, map[string]any{"options": map[string]any{"kubeconfig": "/k"}}, "kubeconfig"},
		{"bad check severity", namespace, map[string]any{"options": map[string]any{"checks": map[string]any{"FG001": "fatal"}}}, "at '/options/checks/FG001'"},
		{"misspelt value", namespace, map[string]any{"tolerration": []any{}}, "tolerration"},
		{"digest without algorithm", namespace, map[string]any{"image": map[string]any{"digest": "0123abcd"}}, "at '/image/digest'"},
		{"selector label", namespace, map[string]any{"podLabels": map[string]any{"app.kubernetes.io/name": "x"}}, "at '/podLabels/app.kubernetes.io~1name'"},
		{"misspelt check code", namespace, map[string]any{"options": map[string]any{"checks": map[string]any{"FG01": "off"}}}, "at '/options/checks'"},
		{"own kube-system", "kube-system", nil, `own (and delete on uninstall) the namespace "kube-system"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := helmTemplate(tt.ns, tt.values)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("values %v in namespace %s: error %v, want one saying %q", tt.values, tt.ns, err, tt.want)
			}
		})
	}
}

// schemaNode is the part of a JSON schema the tests read: the names of
// its properties, with their schemas (a schema may be just false).
type schemaNode struct {
	Properties map[string]json.RawMessage `json:"properties"`
}

func readSchema(t *testing.T) *schemaNode {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(setup.root, chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s schemaNode
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	return &s
}

func (s *schemaNode) property(t *testing.T, name string) *schemaNode {
	t.Helper()
	var p schemaNode
	if err := json.Unmarshal(s.Properties[name], &p); err != nil {
		t.Fatalf("values.schema.json: property %q: %v", name, err)
	}
	return &p
}

// valueGroups are the values that group others, documented one by one
// ("image.tag"); every other property of the schema is one value, maps
// (options, resources) included.
var valueGroups = []string{"image", "namespace", "rbac", "agent"}

// leaves lists the values a user sets, dotted.
func (s *schemaNode) leaves(t *testing.T) []string {
	var out []string
	for name := range s.Properties {
		if !slices.Contains(valueGroups, name) {
			out = append(out, name)
			continue
		}
		for sub := range s.property(t, name).Properties {
			out = append(out, name+"."+sub)
		}
	}
	slices.Sort(out)
	return out
}

// docRow is a row of the values table in docs/install.md: "| `key` |
// `default` | meaning |".
var docRow = regexp.MustCompile("^\\| `([^`]+)` \\| `([^`]*)` \\|")

// TestHelmValuesDocumented: the values table in docs/install.md lists every
// value of the schema, once, with values.yaml's default.
func TestHelmValuesDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(setup.root, "docs", "install.md"))
	if err != nil {
		t.Fatal(err)
	}
	defaults, err := common.ReadValuesFile(filepath.Join(setup.root, chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]string{}
	_, table, ok := strings.Cut(string(doc), "| value | default | |\n")
	if !ok {
		t.Fatal("docs/install.md has no table headed | value | default | |")
	}
	for line := range strings.Lines(table) {
		if !strings.HasPrefix(line, "|") {
			break
		}
		if m := docRow.FindStringSubmatch(line); m != nil {
			documented[m[1]] = m[2]
		}
	}
	want := readSchema(t).leaves(t)
	if got := slices.Sorted(maps.Keys(documented)); !slices.Equal(got, want) {
		t.Errorf("docs/install.md documents the values %q; the schema has %q", got, want)
	}
	for _, key := range want {
		checkDocumentedDefault(t, key, documented[key], defaults.AsMap())
	}
}

// checkDocumentedDefault compares a default as the docs write it (YAML)
// with values.yaml's.
func checkDocumentedDefault(t *testing.T, key, doc string, defaults map[string]any) {
	t.Helper()
	want, ok := lookup(defaults, key)
	if !ok {
		t.Errorf("values.yaml has no %s", key)
		return
	}
	var got any
	if err := yaml.Unmarshal([]byte(doc), &got); err != nil {
		t.Errorf("docs/install.md: the default of %s, %q: %v", key, doc, err)
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("docs/install.md: %s defaults to %q; values.yaml says %v", key, doc, want)
	}
}

// lookup returns the value at a dotted path of nested maps.
func lookup(m map[string]any, path string) (any, bool) {
	first, rest, nested := strings.Cut(path, ".")
	v, ok := m[first]
	if !ok || !nested {
		return v, ok
	}
	sub, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	return lookup(sub, rest)
}

// TestHelmAgentValues: agent.enabled=false leaves the installer alone, as
// the base has it, without the agent's container, volumes and nodes
// rights; agent.metricsPort moves the port, the probes and the listener
// together.
func TestHelmAgentValues(t *testing.T) {
	needAgent(t)
	off := renderChart(t, map[string]any{"agent": map[string]any{"enabled": false}})
	base := render(t, "manifests/base")
	pod := &off.DaemonSet.Spec.Template.Spec
	if names := containerNames(pod); !slices.Equal(names, []string{"install"}) {
		t.Errorf("agent.enabled=false: containers %v, want install alone", names)
	}
	if want := base.DaemonSet.Spec.Template.Spec.Containers[0]; !reflect.DeepEqual(pod.Containers[0], want) {
		t.Errorf("agent.enabled=false changed the installer's container:\n%s", diff.Diff(want, pod.Containers[0]))
	}
	if len(pod.Volumes) != 4 {
		t.Errorf("agent.enabled=false: %d volumes, want the installer's 4", len(pod.Volumes))
	}
	_, rules := pluginRules(false)
	checkGrants(t, "ClusterRole "+off.ClusterRole.Name, off.ClusterRole.Rules, "podevent.Rules", rules)

	moved := renderChart(t, map[string]any{"agent": map[string]any{"metricsPort": 9800}})
	c := &moved.DaemonSet.Spec.Template.Spec.Containers[1]
	if got := agentSetting(c, "metrics-bind-address"); got != ":9800" {
		t.Errorf("agent.metricsPort=9800: -metrics-bind-address %q, want :9800", got)
	}
	checkAgentMetrics(t, c)
	if _, _, err := helmTemplate(namespace, map[string]any{"agent": map[string]any{"metricsPort": 80}}); err == nil {
		t.Error("agent.metricsPort=80 rendered; want the schema to refuse a privileged port")
	}
}
