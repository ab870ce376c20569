package route

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fibguard/fibguard/internal/examplenode"
	"github.com/fibguard/fibguard/internal/nstest"
)

// execute runs `route ARGS...` and returns its stdout and error.
func execute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := NewCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&bytes.Buffer{})
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestGetJSON(t *testing.T) {
	tests := []struct {
		dst  string
		want answer
	}{
		{"127.16.0.5", answer{Type: "", Table: "", Dev: "", Error: "EINVAL"}},
		{"10.0.0.10", answer{Type: "local", Table: "main", Dev: "lo", PrefSrc: "10.0.0.10"}},
		{"8.8.8.8", answer{Type: "unicast", Table: "main", Dev: "eth0", Gateway: "10.0.0.1", PrefSrc: "10.0.0.10"}},
		{"127.16.0.1", answer{Type: "local", Table: "main", Dev: "lo", PrefSrc: "127.16.0.1"}},
	}
	for _, tt := range tests {
		out, err := execute(t, "get", "--example", "-o", "json", tt.dst)
		if err != nil {
			t.Fatalf("%s: %v", tt.dst, err)
		}
		var got answer
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%s: %v\n%s", tt.dst, err, out)
		}
		if got.Error != tt.want.Error || (tt.want.Error == "" && (got.Type != tt.want.Type || got.Table != tt.want.Table || got.Dev != tt.want.Dev || got.Gateway != tt.want.Gateway || got.PrefSrc != tt.want.PrefSrc)) {
			t.Errorf("%s: got %+v, want %+v", tt.dst, got, tt.want)
		}
		if len(got.Trace) == 0 {
			t.Errorf("%s: no trace", tt.dst)
		}
	}
}

func TestGetText(t *testing.T) {
	out, err := execute(t, "get", "--example", "127.16.0.5")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"127.16.0.5: EINVAL", "table main: matched 127.16.0.0/16 dev cni0", "route_localnet=0 on cni0"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestGetSnapshot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.json")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := examplenode.Typical().Encode(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := execute(t, "get", "--snapshot", path, "8.8.8.8")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "8.8.8.8 via 10.0.0.1 dev eth0 src 10.0.0.10\n") {
		t.Errorf("got %q", out)
	}
}

func TestGetErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"get", "--example", "not-an-ip"}, "destination"},
		{[]string{"get", "--example", "--from", "x", "10.0.0.1"}, "--from"},
		{[]string{"get", "--example", "-o", "yaml", "10.0.0.1"}, "want text or json"},
		{[]string{"get", "--example", "--snapshot", "x.json", "10.0.0.1"}, "exclude each other"},
		{[]string{"get", "--example", "--kernel", "10.0.0.1"}, "--kernel needs a live namespace"},
		{[]string{"get", "--snapshot", "/nonexistent/x.json", "10.0.0.1"}, "open snapshot"},
		{[]string{"get", "--netns", "/nonexistent/ns", "10.0.0.1"}, "load namespace"},
		{[]string{"get", "--example", "--iif", "eth0", "10.0.0.1"}, "needs a source"},
		{[]string{"get", "--example", "--from", "::1", "10.0.0.1"}, "another family"},
	}
	for _, tt := range tests {
		_, err := execute(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want an error containing %q", tt.args, err, tt.want)
		}
	}
}

// TestGetKernel compares the model with the kernel in a namespace where
// both must agree, and prints both.
func TestGetKernel(t *testing.T) {
	ns := nstest.NewWithLoUp(t)
	if err := ns.Batch([]string{"link add br0 type bridge", "link set br0 up", "addr add 127.16.0.1/16 dev br0"}); err != nil {
		t.Fatal(err)
	}
	if err := ns.Settle(5e9); err != nil {
		t.Fatal(err)
	}
	out, err := execute(t, "get", "--netns", ns.Name(), "--kernel", "-o", "json", "127.16.0.5")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Model  answer `json:"model"`
		Kernel answer `json:"kernel"`
		Agree  bool   `json:"agree"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !got.Agree || got.Model.Error != "EINVAL" || got.Kernel.Error != "EINVAL" {
		t.Errorf("got %+v", got)
	}
}
