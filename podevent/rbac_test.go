package podevent

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// manifestsBase is the kustomize base whose ClusterRole the plugin's
// account is bound to.
const manifestsBase = "../manifests/base"

// TestRulesMatchManifests: the ClusterRole of manifests/base grants
// exactly Rules — not less, or Events fail, and not more.
func TestRulesMatchManifests(t *testing.T) {
	if _, err := os.Stat(manifestsBase); errors.Is(err, fs.ErrNotExist) {
		t.Skipf("%s does not exist: no manifests to compare Rules with", manifestsBase)
	}
	if err := checkManifestRules(manifestsBase); err != nil {
		t.Error(err)
	}
}

// TestCheckManifestRules: the comparison itself, on made-up bases.
func TestCheckManifestRules(t *testing.T) {
	const head = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: fibguard\nrules:\n"
	for _, tc := range []struct {
		name  string
		files map[string]string
		err   string // "": must match
	}{
		{"exact", map[string]string{"rbac.yaml": head +
			"- apiGroups: [\"\"]\n  resources: [events]\n  verbs: [create, patch]\n"}, ""},
		{"grouped differently, among other objects", map[string]string{
			"sa.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: fibguard\n",
			"rbac.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n---\n" + head +
				"- apiGroups: [\"\"]\n  resources: [events]\n  verbs: [patch]\n" +
				"- apiGroups: [\"\"]\n  resources: [events]\n  verbs: [create]\n"}, ""},
		{"more: pods get, the option, not the default", map[string]string{"rbac.yaml": head +
			"- apiGroups: [\"\"]\n  resources: [events, pods]\n  verbs: [create, patch, get]\n"}, "want exactly"},
		{"less", map[string]string{"rbac.yaml": head +
			"- apiGroups: [\"\"]\n  resources: [events]\n  verbs: [create]\n"}, "want exactly"},
		{"restricted by name", map[string]string{"rbac.yaml": head +
			"- apiGroups: [\"\"]\n  resources: [events]\n  verbs: [create, patch]\n  resourceNames: [web-0]\n"}, "resourceNames"},
		{"no ClusterRole", map[string]string{"sa.yaml": "kind: ServiceAccount\n"}, "0 ClusterRoles"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := checkManifestRules(dir)
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("got %v, want a match", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("got %v, want an error containing %q", err, tc.err)
			}
		})
	}
}

// checkManifestRules finds the one ClusterRole in the YAML files of dir
// and reports how its rules differ from Rules.
func checkManifestRules(dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	type object struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Rules []struct {
			Rule
			// Fields Rule lacks, which must not be there.
			ResourceNames   []string `json:"resourceNames"`
			NonResourceURLs []string `json:"nonResourceURLs"`
		} `json:"rules"`
	}
	var roles []object
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		for doc := range bytes.SplitSeq(data, []byte("\n---")) {
			var o object
			if err := yaml.Unmarshal(doc, &o); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			if o.Kind == "ClusterRole" {
				roles = append(roles, o)
			}
		}
	}
	if len(roles) != 1 {
		return fmt.Errorf("%d ClusterRoles in %s, want 1", len(roles), dir)
	}
	role := roles[0]
	var rules []Rule
	for _, r := range role.Rules {
		if len(r.ResourceNames) > 0 || len(r.NonResourceURLs) > 0 {
			return fmt.Errorf("ClusterRole %s: rule %+v has resourceNames or nonResourceURLs", role.Metadata.Name, r)
		}
		rules = append(rules, r.Rule)
	}
	if got, want := canonicalRules(rules), canonicalRules(Rules()); !reflect.DeepEqual(got, want) {
		return fmt.Errorf("ClusterRole %s grants %v, want exactly %v (podevent.Rules)", role.Metadata.Name, got, want)
	}
	return nil
}

// canonicalRules is one rule per group, resource and verb, sorted, so that
// equivalent roles compare equal however their rules are grouped.
func canonicalRules(rules []Rule) []Rule {
	var out []Rule
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					out = append(out, Rule{APIGroups: []string{g}, Resources: []string{res}, Verbs: []string{v}})
				}
			}
		}
	}
	key := func(r Rule) []string { return []string{r.APIGroups[0], r.Resources[0], r.Verbs[0]} }
	slices.SortFunc(out, func(a, b Rule) int { return slices.Compare(key(a), key(b)) })
	return slices.CompactFunc(out, func(a, b Rule) bool { return reflect.DeepEqual(a, b) })
}
