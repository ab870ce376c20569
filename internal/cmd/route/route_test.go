package route

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/internal/cmd/cli"
	"github.com/fibguard/fibguard/internal/examplenode"
	"github.com/fibguard/fibguard/internal/nstest"
)

// execute runs `route ARGS...` and returns its stdout and error.
func execute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := NewCommand()
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
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
		if code := cli.Code(err); (tt.want.Error == "") != (code == cli.ExitOK) || code == cli.ExitUsage {
			t.Fatalf("%s: exit code %d (%v), want 0 for a route and 1 for an error", tt.dst, code, err)
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
	if code := cli.Code(err); code != cli.ExitAnswer {
		t.Fatalf("exit code %d (%v), want 1: the answer is an error", code, err)
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
		{[]string{"get", "--example", "not-an-ip"}, `destination "not-an-ip" is not an IP address`},
		{[]string{"get", "--example", "1.2.3.400"}, `destination "1.2.3.400" is not an IP address: want an IPv4 address: four numbers from 0 to 255`},
		{[]string{"get", "--example", "10.0.0.0/8"}, "want an address, not a prefix"},
		{[]string{"get", "--example", "fd00::zz"}, "want an IPv6 address"},
		{[]string{"get", "--example", "--from", "x", "10.0.0.1"}, `--from "x" is not an IP address`},
		{[]string{"get", "--example", "-o", "xml", "10.0.0.1"}, `-o "xml": want text, json or yaml`},
		{[]string{"get", "--example", "--snapshot", "x.json", "10.0.0.1"}, "exclude each other"},
		{[]string{"get", "--example", "--ip-dump", "x", "10.0.0.1"}, "exclude each other"},
		{[]string{"get", "--example", "--kernel", "10.0.0.1"}, "--kernel asks the kernel of a live namespace"},
		{[]string{"get", "--ip-dump", "/nonexistent", "--kernel", "10.0.0.1"}, "--kernel asks the kernel of a live namespace"},
		{[]string{"get", "--snapshot", "/nonexistent/x.json", "10.0.0.1"}, "snapshot /nonexistent/x.json: does not exist"},
		{[]string{"get", "--netns", "/nonexistent/ns", "10.0.0.1"}, "network namespace /nonexistent/ns: does not exist"},
		{[]string{"get", "--example"}, "route get needs DST"},
		{[]string{"get", "--example", "10.0.0.1", "10.0.0.2"}, `route get takes DST only, got also ["10.0.0.2"]`},
		{[]string{"gte", "10.0.0.1"}, `unknown command "gte" for "route": did you mean "get"?`},
		{[]string{"get", "--example", "--iif", "eth0", "10.0.0.1"}, "needs a source"},
		{[]string{"get", "--example", "--from", "::1", "10.0.0.1"}, "another family"},
	}
	for _, tt := range tests {
		out, err := execute(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want an error containing %q", tt.args, err, tt.want)
		}
		if code := cli.Code(err); code != cli.ExitUsage || out != "" {
			t.Errorf("%v: exit code %d, output %q: want 2 and no answer", tt.args, code, out)
		}
		if err != nil && strings.Contains(err.Error(), "ParseAddr") {
			t.Errorf("%v: %v: Go's parser's words", tt.args, err)
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
	if code := cli.Code(err); code != cli.ExitAnswer {
		t.Fatalf("exit code %d (%v), want 1: the answer is an error", code, err)
	}
	var got kernelDocument
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !got.Agree || got.Model.Error != "EINVAL" || got.Kernel.Error != "EINVAL" {
		t.Errorf("got %+v", got)
	}
}

// TestVerdict: with --kernel, a disagreement exits 1 even when both
// answers are routes; an answer that is an error exits 1; a route the
// kernel agrees with exits 0.
func TestVerdict(t *testing.T) {
	m := examplenode.Typical()
	route, err := m.Lookup(fib.Query{Dst: netip.MustParseAddr("8.8.8.8")})
	if err != nil {
		t.Fatal(err)
	}
	other := route
	other.Dev = "cni0"
	refused := route
	refused.Err = syscall.ENETUNREACH
	tests := []struct {
		name       string
		res, kres  *fib.Result
		code       int
		stderrPart string
	}{
		{"route, no kernel", &route, nil, cli.ExitOK, ""},
		{"route, kernel agrees", &route, &route, cli.ExitOK, ""},
		{"kernel disagrees", &route, &other, cli.ExitAnswer, "8.8.8.8: the model and the kernel disagree ("},
		{"refused, kernel agrees", &refused, &refused, cli.ExitAnswer, "refuses the lookup with ENETUNREACH"},
	}
	for _, tt := range tests {
		err := verdict(tt.res, tt.kres)
		if cli.Code(err) != tt.code || (err != nil && !strings.Contains(err.Error(), tt.stderrPart)) {
			t.Errorf("%s: %v (exit %d), want exit %d saying %q", tt.name, err, cli.Code(err), tt.code, tt.stderrPart)
		}
		if text := text(tt.res, tt.kres); tt.kres != nil && strings.Contains(text, "DISAGREE") != strings.Contains(tt.name, "disagrees") {
			t.Errorf("%s: text %q", tt.name, text)
		}
	}
}

// TestGetMultipathJSON: a multipath answer lists its usable next hops in
// JSON, the kernel's choice among them, and the dead one left out.
func TestGetMultipathJSON(t *testing.T) {
	ns := nstest.NewWithLoUp(t)
	if err := ns.Batch([]string{
		"link add va0 type veth peer name vb0", "link add va1 type veth peer name vb1", "link add va2 type veth peer name vb2",
		"link set va0 up", "link set vb0 up", "link set va1 up", "link set vb1 up", "link set va2 up", "link set vb2 up",
		"addr add 10.1.0.1/24 dev va0", "addr add 10.2.0.1/24 dev va1", "addr add 10.3.0.1/24 dev va2",
		"route add 10.9.0.0/16 nexthop via 10.1.0.2 dev va0 weight 2 nexthop via 10.2.0.2 dev va1 nexthop via 10.3.0.2 dev va2",
		"link set vb2 down",
		"link set va2 down",
	}); err != nil {
		t.Fatal(err)
	}
	if err := ns.Settle(5e9); err != nil {
		t.Fatal(err)
	}
	out, err := execute(t, "get", "--netns", ns.Name(), "--kernel", "-o", "json", "10.9.1.1")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var got kernelDocument
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := []path{{Dev: "va0", Gateway: "10.1.0.2", PrefSrc: "10.1.0.1", Weight: 2}, {Dev: "va1", Gateway: "10.2.0.2", PrefSrc: "10.2.0.1", Weight: 1}}
	if !got.Agree || !slices.Equal(got.Model.Paths, want) {
		t.Errorf("model paths %+v (agree %v), want %+v\n%s", got.Model.Paths, got.Agree, want, out)
	}
}

// kernelDocument is the JSON of an answer given with --kernel.
type kernelDocument struct {
	Model  answer `json:"model"`
	Kernel answer `json:"kernel"`
	Agree  bool   `json:"agree"`
}
