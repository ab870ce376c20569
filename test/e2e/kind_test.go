package e2e

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	kindv1alpha4 "sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kindcmd "sigs.k8s.io/kind/pkg/cmd"
	kindroot "sigs.k8s.io/kind/pkg/cmd/kind"
	kindlog "sigs.k8s.io/kind/pkg/log"
	"sigs.k8s.io/yaml"
)

// The kind path cannot run on a machine without a container engine, so
// these tests hold hack/kind-e2e.sh and test/e2e/kind-config.yaml to kind's
// own definitions instead: the config decodes strictly into kind's
// v1alpha4 types, and every kind subcommand and flag the script uses exists
// in kind's command tree.

func TestKindConfigDecodesStrictly(t *testing.T) {
	raw, err := os.ReadFile(repoPath("test", "e2e", "kind-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c kindv1alpha4.Cluster
	if err := yaml.UnmarshalStrict(raw, &c); err != nil {
		t.Fatalf("kind-config.yaml is not a valid kind v1alpha4 Cluster: %v", err)
	}
	if c.Kind != "Cluster" || c.APIVersion != "kind.x-k8s.io/v1alpha4" {
		t.Errorf("kind %q apiVersion %q, want Cluster kind.x-k8s.io/v1alpha4", c.Kind, c.APIVersion)
	}
	if !c.Networking.DisableDefaultCNI {
		t.Error("networking.disableDefaultCNI is off: kindnet would be the primary CNI, not the suite's conflists")
	}
	if len(c.Nodes) == 0 || c.Nodes[0].Role != kindv1alpha4.ControlPlaneRole {
		t.Errorf("nodes %+v: want a control-plane node first", c.Nodes)
	}
}

// repoPath is a path in the repository, wherever the test binary runs from
// (make e2e runs a compiled suite from the repository's root).
func repoPath(elem ...string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(append([]string{filepath.Dir(file), "..", ".."}, elem...)...)
}

// kindInvocation matches a line that runs kind through the script's "$kind"
// as a command (at the start, or in a command or process substitution).
var kindInvocation = regexp.MustCompile(`(?:^|\()"\$kind" (.*)$`)

// kindCalls extracts the kind command lines of the script: every line that
// runs "$kind", and the create=(...) array with what create+=(...) adds.
func kindCalls(t *testing.T, script io.Reader) [][]string {
	t.Helper()
	var calls [][]string
	var create []string
	sc := bufio.NewScanner(script)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "create=("):
			create = append(create, strings.Fields(strings.TrimSuffix(strings.TrimPrefix(line, "create=("), ")"))...)
		case strings.Contains(line, "create+=("):
			rest := line[strings.Index(line, "create+=(")+len("create+=("):]
			create = append(create, strings.Fields(strings.TrimSuffix(rest, ")"))...)
		case kindInvocation.MatchString(line):
			args := strings.Fields(strings.TrimSuffix(kindInvocation.FindStringSubmatch(line)[1], ")"))
			if len(args) > 0 && args[0] != `"${create[@]}"` {
				calls = append(calls, args)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(create) > 0 {
		calls = append(calls, create)
	}
	return calls
}

func TestKindScriptUsesKindsCLI(t *testing.T) {
	f, err := os.Open(repoPath("hack", "kind-e2e.sh"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	calls := kindCalls(t, f)
	// create, get nodes, load image-archive (twice), export logs, delete.
	if len(calls) < 6 {
		t.Fatalf("found %d kind invocations in hack/kind-e2e.sh, want at least 6: %q", len(calls), calls)
	}
	for _, p := range checkKindCalls(calls) {
		t.Error(p)
	}
}

// TestKindCallsCheckCatches makes sure the check above can fail: a script
// with a subcommand and a flag kind does not have.
func TestKindCallsCheckCatches(t *testing.T) {
	script := `"$kind" create cluster --name x --no-such-flag
"$kind" frobnicate cluster
"$kind" delete cluster --name x
`
	problems := checkKindCalls(kindCalls(t, strings.NewReader(script)))
	if len(problems) != 2 {
		t.Fatalf("problems %q, want the unknown flag and the unknown subcommand", problems)
	}
}

// checkKindCalls looks each call's subcommand and flags up in kind's own
// command tree, and lists what it lacks.
func checkKindCalls(calls [][]string) []string {
	root := kindroot.NewCommand(kindlog.NoopLogger{}, kindcmd.IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard})
	var problems []string
	for _, call := range calls {
		var words, flags []string
		for _, a := range call {
			if a == "||" || a == "&&" || a == "|" {
				break
			}
			switch {
			case strings.HasPrefix(a, "--"):
				flags = append(flags, strings.SplitN(strings.TrimPrefix(a, "--"), "=", 2)[0])
			case strings.HasPrefix(a, `"`) || strings.HasPrefix(a, "$") || strings.ContainsAny(a[:1], "<>0123456789"):
				// arguments and redirections: not kind's to check
			case len(flags) == 0:
				words = append(words, a)
			}
		}
		sub, rest, err := root.Find(words)
		if err != nil || sub == root || len(rest) > 0 {
			problems = append(problems, "kind "+strings.Join(words, " ")+": no such subcommand in kind's CLI")
			continue
		}
		for _, name := range flags {
			if sub.Flag(name) == nil {
				problems = append(problems, "kind "+strings.Join(words, " ")+": no flag --"+name+" in kind's CLI")
			}
		}
	}
	return problems
}
