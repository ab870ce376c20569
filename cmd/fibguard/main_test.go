package main

import (
	"go/build"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoKubernetesClient: the plugin binary links no Kubernetes client
// library. Every pod's ADD runs it, and client-go's package
// initialisation alone cost about 1–2.6 ms per run (docs/performance.md);
// Events are recorded by cmd/fibguard-event, which the plugin runs only
// when it rejects or warns.
func TestNoKubernetesClient(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(build.Default.GOROOT, "bin", "go")
	}
	out, err := exec.Command(goCmd, "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %q", deps)
	}
	for _, d := range deps {
		if strings.HasPrefix(d, "k8s.io/") || strings.HasPrefix(d, "sigs.k8s.io/") ||
			d == "github.com/fibguard/fibguard/podevent/kube" {
			t.Errorf("the plugin links %s", d)
		}
	}
}
