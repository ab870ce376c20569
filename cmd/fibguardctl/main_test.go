package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fibguard/fibguard/internal/nstest"
)

// fibguardctl runs the command in-process and returns its exit code,
// standard output and standard error.
func fibguardctl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestExitCodes: 0 for a route, 1 for an answer that is an error or a
// refused pod, 2 for usage and input errors, unknown commands included;
// a failure says why on one line of standard error.
func TestExitCodes(t *testing.T) {
	examples := filepath.Join("..", "..", "examples")
	tests := []struct {
		args []string
		code int
	}{
		{[]string{"route", "get", "--example", "8.8.8.8"}, 0},
		{[]string{"route", "get", "--example", "127.16.0.5"}, 1},
		{[]string{"route", "get", "--example", "--oif", "nope", "8.8.8.8"}, 1},
		{[]string{"route", "get", "--example", "1.2.3.400"}, 2},
		{[]string{"route", "gte", "8.8.8.8"}, 2},
		{[]string{"route", "get"}, 2},
		{[]string{"bogus"}, 2},
		{[]string{"route", "get", "--example", "--bogus", "8.8.8.8"}, 2},
		{[]string{"route", "get", "--example", "--mark", "x", "8.8.8.8"}, 2},
		{[]string{"check", filepath.Join(examples, "healthy-bridge.conflist")}, 0},
		{[]string{"check", filepath.Join(examples, "loopback-bridge.conflist")}, 1},
		{[]string{"check", filepath.Join(examples, "nope.conflist")}, 2},
		{[]string{"route"}, 0},
		{[]string{"--version"}, 0},
	}
	for _, tt := range tests {
		code, out, errOut := fibguardctl(t, tt.args...)
		if code != tt.code {
			t.Errorf("fibguardctl %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(tt.args, " "), code, tt.code, out, errOut)
		}
		if (code != 0) != (errOut != "") || strings.Count(errOut, "\n") > 1 {
			t.Errorf("fibguardctl %s: exit %d with stderr %q: want one line exactly on failure", strings.Join(tt.args, " "), code, errOut)
		}
	}
}

// TestNoTabs: iproute2 prints a rule with a tab after its priority; no
// output of fibguardctl holds one, in any format, nor do its errors.
func TestNoTabs(t *testing.T) {
	ns := nstest.NewWithLoUp(t)
	if err := ns.Batch([]string{
		"link add br0 type bridge", "link set br0 up", "addr add 10.244.0.1/24 dev br0",
		"link add eth0 type veth peer name eth1", "link set eth0 up", "link set eth1 up", "addr add 10.0.0.10/24 dev eth0",
		"rule add pref 100 to 10.244.0.0/16 lookup 100",
		"route add 10.244.0.0/16 via 10.0.0.1 table 100",
		"rule add pref 200 to 10.99.0.0/16 unreachable",
	}); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"route", "get", "--netns", ns.Name(), "10.244.0.5"},
		{"route", "get", "--netns", ns.Name(), "--kernel", "10.99.0.5"},
		{"route", "get", "--netns", ns.Name(), "-o", "json", "10.244.0.5"},
		{"route", "get", "--netns", ns.Name(), "-o", "yaml", "--kernel", "10.99.0.5"},
	} {
		_, out, errOut := fibguardctl(t, args...)
		if !strings.Contains(out, "rule 100: from all to 10.244.0.0/16 lookup 100") && !strings.Contains(out, "rule 200: from all to 10.99.0.0/16 unreachable") ||
			strings.ContainsRune(out+errOut, '\t') {
			t.Errorf("fibguardctl %s: want the rule, without tabs:\n%s%s", strings.Join(args, " "), out, errOut)
		}
	}
}

// TestVersion builds every binary of the project from this checkout with
// VCS stamping and runs it with --version alone, without the environment
// or input each needs otherwise: each prints its name, and the commit
// HEAD, and exits 0.
func TestVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds five binaries")
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not in a git checkout: %v", err)
	}
	dir := t.TempDir()
	build := exec.Command("go", "build", "-buildvcs=true", "-o", dir+"/",
		"../fibguard", "../fibguard-event", "../fibguard-install", "../fibguard-agent", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, name := range []string{"fibguard", "fibguard-event", "fibguard-install", "fibguard-agent", "fibguardctl"} {
		cmd := exec.Command(filepath.Join(dir, name), "--version")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.Output()
		commit := "commit " + strings.TrimSpace(string(head))
		if err != nil || !strings.HasPrefix(string(out), name+" v") || !strings.Contains(string(out), commit) || strings.Count(string(out), "\n") != 1 {
			t.Errorf("%s --version: %q (%v), want one line: %s, the module version and %s", name, out, err, name, commit)
		}
	}
}
