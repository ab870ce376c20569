package checker

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/internal/examplenode"
)

// TestOptions disables checks and overrides severities; the order follows
// the overridden severities.
func TestOptions(t *testing.T) {
	input := func(t *testing.T) Input {
		return Input{
			Host:   withBridgeAddrs(t, examplenode.LoopbackBridge()),
			Result: bridgeResult(t, "127.16.0.2/16 127.16.0.1", "169.254.3.4/16"),
		}
	}
	tests := []struct {
		name string
		opts Options
		want []expect
	}{
		{
			name: "defaults",
			want: []expect{
				{code: CodeHostLoopback, msg: "127.16.0.2"},
				{code: CodePodReserved, msg: "127.16.0.2"},
				{code: CodeGatewayBad, msg: "127.16.0.1"},
				{code: CodeLinkLocal, sev: SeverityWarning, msg: "169.254.3.4"},
			},
		},
		{
			name: "disabled",
			opts: Options{Disabled: map[Code]bool{CodeHostLoopback: true, CodeGatewayBad: true, CodeLinkLocal: false}},
			want: []expect{
				{code: CodePodReserved, msg: "127.16.0.2"},
				{code: CodeLinkLocal, sev: SeverityWarning, msg: "169.254.3.4"},
			},
		},
		{
			name: "overridden: a warning made an error sorts before warnings made of errors",
			opts: Options{Severity: map[Code]Severity{CodePodReserved: SeverityWarning, CodeGatewayBad: SeverityWarning, CodeLinkLocal: SeverityError}},
			want: []expect{
				{code: CodeHostLoopback, msg: "127.16.0.2"},
				{code: CodeLinkLocal, msg: "169.254.3.4"},
				{code: CodePodReserved, sev: SeverityWarning, msg: "127.16.0.2"},
				{code: CodeGatewayBad, sev: SeverityWarning, msg: "127.16.0.1"},
			},
		},
		{
			name: "an invalid override is ignored",
			opts: Options{Severity: map[Code]Severity{CodeLinkLocal: "fatal"}},
			want: []expect{
				{code: CodeHostLoopback, msg: "127.16.0.2"},
				{code: CodePodReserved, msg: "127.16.0.2"},
				{code: CodeGatewayBad, msg: "127.16.0.1"},
				{code: CodeLinkLocal, sev: SeverityWarning, msg: "169.254.3.4"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertFindings(t, Check(input(t), tt.opts), tt.want)
		})
	}
}

// TestCatalog checks that codes are unique, ordered, FG plus three digits,
// with a valid default severity, and that each is documented in
// docs/checks.md with an example and a fix.
func TestCatalog(t *testing.T) {
	doc, err := os.ReadFile("../docs/checks.md")
	if err != nil {
		t.Fatalf("read docs: %v", err)
	}
	code := regexp.MustCompile(`^FG\d{3}$`)
	cat := Catalog()
	if len(cat) == 0 {
		t.Fatal("empty catalog")
	}
	for i, c := range cat {
		if !code.MatchString(string(c.Code)) || !c.Severity.Valid() || c.Title == "" {
			t.Errorf("catalog entry %+v: bad code, severity or title", c)
		}
		if i > 0 && cat[i-1].Code >= c.Code {
			t.Errorf("catalog: %s after %s: not in order", c.Code, cat[i-1].Code)
		}
		if !Known(c.Code) {
			t.Errorf("Known(%s) = false", c.Code)
		}
		section := docSection(string(doc), c.Code)
		if section == "" {
			t.Errorf("docs/checks.md: no section for %s", c.Code)
			continue
		}
		for _, want := range []string{"Example: `", "Fix: ", "Severity: " + string(c.Severity) + "."} {
			if !strings.Contains(section, want) {
				t.Errorf("docs/checks.md, %s: no %q", c.Code, want)
			}
		}
	}
	if Known("FG999") || Known("") {
		t.Error("Known accepts codes that are not in the catalog")
	}
	cat[0].Code = "changed"
	if Catalog()[0].Code == "changed" {
		t.Error("Catalog returns the package's own slice")
	}
}

// docSection returns the text under the heading "### FGnnn ..." up to the
// next heading.
func docSection(doc string, c Code) string {
	_, rest, ok := strings.Cut(doc, "\n### "+string(c)+" ")
	if !ok {
		return ""
	}
	section, _, _ := strings.Cut(rest, "\n#")
	return section
}

// TestModelVersusKernel stands a second model in for the kernel: a
// disagreement gives one warning carrying both answers; a failure to ask
// gives another; agreement gives none.
func TestModelVersusKernel(t *testing.T) {
	host := func(t *testing.T) *fib.Model { return bridgeHost(t, "10.244.0.1/24") }
	result := func(t *testing.T) *current.Result { return bridgeResult(t, "10.244.0.5/24 10.244.0.1") }
	tests := []struct {
		name   string
		kernel func(t *testing.T) func(fib.Query) (fib.Result, error)
		opts   Options
		want   []expect
	}{
		{
			name:   "agree",
			kernel: func(t *testing.T) func(fib.Query) (fib.Result, error) { return host(t).Lookup },
		},
		{
			name: "disagree",
			kernel: func(t *testing.T) func(fib.Query) (fib.Result, error) {
				return apply(t, host(t), route(fib.Route{Type: fib.TypeBlackhole, Dst: netip.MustParsePrefix("10.244.0.5/32")})).Lookup
			},
			want: []expect{{code: CodeModelKernel, sev: SeverityWarning,
				msg: `model and kernel disagree on the host's route to pod IP 10.244.0.5: model "10.244.0.5 dev cni0 src 10.244.0.1", kernel "10.244.0.5: EINVAL (invalid argument)" (error: none != EINVAL)`}},
		},
		{
			name: "kernel answer without its destination",
			kernel: func(t *testing.T) func(fib.Query) (fib.Result, error) {
				return func(fib.Query) (fib.Result, error) {
					return fib.Result{Type: fib.TypeUnicast, Table: fib.TableMain, Dev: "eth0"}, nil
				}
			},
			want: []expect{{code: CodeModelKernel, sev: SeverityWarning, msg: `kernel "10.244.0.5 dev eth0" (dev: cni0 != eth0; src: 10.244.0.1 != none)`}},
		},
		{
			name: "cannot ask",
			kernel: func(t *testing.T) func(fib.Query) (fib.Result, error) {
				return func(q fib.Query) (fib.Result, error) {
					return fib.Result{}, fmt.Errorf("route get %s:\n%w", q.Dst, errors.New("netlink: operation not permitted"))
				}
			},
			want: []expect{{code: CodeKernelFailed, sev: SeverityWarning, msg: "could not ask the kernel for the host's route to pod IP 10.244.0.5: route get 10.244.0.5: netlink: operation not permitted"}},
		},
		{
			name: "disabled: the kernel is not asked",
			kernel: func(t *testing.T) func(fib.Query) (fib.Result, error) {
				return func(fib.Query) (fib.Result, error) {
					t.Error("kernel asked although both kernel checks are disabled")
					return fib.Result{}, nil
				}
			},
			opts: Options{Disabled: map[Code]bool{CodeModelKernel: true, CodeKernelFailed: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Check(Input{Host: host(t), Result: result(t), Kernel: tt.kernel(t)}, tt.opts)
			assertFindings(t, got, tt.want)
			for _, f := range got {
				if f.Code == CodeModelKernel && len(f.Trace) == 0 {
					t.Error("disagreement without the model's trace")
				}
			}
		})
	}
}

// TestCheckNil covers missing inputs: no result, no models.
func TestCheckNil(t *testing.T) {
	if got := Check(Input{Host: examplenode.Typical()}, Options{}); got != nil {
		t.Errorf("Check without a result: %v", got)
	}
	res := &current.Result{Interfaces: []*current.Interface{nil, {Name: "eth0", Sandbox: sandboxPath}}, Routes: nil}
	addIPs(t, res, 1, "10.244.0.5/24 10.244.0.1")
	if got := Check(Input{Result: res}, Options{}); len(got) != 0 {
		t.Errorf("Check of a healthy result without models: %v", got)
	}
}

// TestCheckDoesNotChangeModels runs a full check and compares the models
// with copies taken before.
func TestCheckDoesNotChangeModels(t *testing.T) {
	host := withBridgeAddrs(t, examplenode.LoopbackBridge())
	pod := podModel(t, []string{"10.244.0.5/24"}, "10.244.0.1")
	hostBefore, podBefore := snapshot(t, host), snapshot(t, pod)
	res := bridgeResult(t, "127.16.0.2/16 127.16.0.1", "10.244.0.5/24 10.244.0.1")
	res.Routes = defaultRoutes("10.244.0.1")
	Check(Input{Host: host, Pod: pod, Result: res, Kernel: host.Lookup}, Options{})
	if snapshot(t, host) != hostBefore || snapshot(t, pod) != podBefore {
		t.Error("Check changed a model")
	}
}

func snapshot(t *testing.T, m *fib.Model) string {
	t.Helper()
	var b strings.Builder
	if err := m.Encode(&b); err != nil {
		t.Fatalf("encode: %v", err)
	}
	return b.String()
}

// TestSortFindings orders by severity, code, address and message.
func TestSortFindings(t *testing.T) {
	a := netip.MustParseAddr
	fs := []Finding{
		{Code: "FG031", Severity: SeverityWarning, Address: a("10.0.0.1")},
		{Code: "FG003", Severity: SeverityError, Address: a("10.0.0.9")},
		{Code: "FG003", Severity: SeverityError, Address: a("10.0.0.2"), Message: "b"},
		{Code: "FG003", Severity: SeverityError, Address: a("10.0.0.2"), Message: "a"},
		{Code: "FG001", Severity: SeverityWarning},
		{Code: "FG020", Severity: SeverityError},
	}
	sortFindings(fs)
	var got []string
	for _, f := range fs {
		got = append(got, fmt.Sprintf("%s %s %s %s", f.Severity, f.Code, f.Address, f.Message))
	}
	want := []string{
		"error FG003 10.0.0.2 a",
		"error FG003 10.0.0.2 b",
		"error FG003 10.0.0.9 ",
		"error FG020 invalid IP ",
		"warning FG001 invalid IP ",
		"warning FG031 10.0.0.1 ",
	}
	if !slices.Equal(got, want) {
		t.Errorf("order:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
