package check

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fibguard/fibguard/checker"
	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/internal/cmd/cli"
	"github.com/fibguard/fibguard/internal/cmd/source"
	"github.com/fibguard/fibguard/internal/examplenode"
	"github.com/fibguard/fibguard/internal/nstest"
)

// examples is the repository's examples directory.
const examples = "../../../examples"

// execute runs `check ARGS...` as fibguardctl does and returns its standard
// output, the exit code main would use, and the error.
func execute(t *testing.T, args ...string) (string, int, error) {
	t.Helper()
	cmd := NewCommand()
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), ExitCode(err), err
}

// codes reads the finding codes of a JSON report.
func codes(t *testing.T, out string) []string {
	t.Helper()
	var rep struct {
		Findings []checker.Finding `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("JSON output: %v\n%s", err, out)
	}
	got := []string{}
	for _, f := range rep.Findings {
		got = append(got, string(f.Code))
	}
	return got
}

// TestExamples runs every example conflist on the typical node.
func TestExamples(t *testing.T) {
	tests := []struct {
		file  string
		code  int
		codes []string
	}{
		{"loopback-bridge.conflist", ExitFindings, []string{"FG001", "FG010", "FG020", "FG023"}},
		{"healthy-bridge.conflist", ExitClean, []string{}},
		{"overlap-node-network.conflist", ExitFindings, []string{"FG003"}},
		{"ptp-kindnet.conflist", ExitClean, []string{}},
		{"dualstack.conflist", ExitClean, []string{}},
		{"ipv6.conflist", ExitClean, []string{}},
	}
	files, err := filepath.Glob(filepath.Join(examples, "*.conflist"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(tests) {
		t.Errorf("examples/ has %d conflists, the table %d: keep them in step", len(files), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			out, code, err := execute(t, filepath.Join(examples, tt.file), "-o", "json")
			if code != tt.code {
				t.Errorf("exit code %d (%v), want %d\n%s", code, err, tt.code, out)
			}
			if got := codes(t, out); !slices.Equal(got, tt.codes) {
				t.Errorf("findings %q, want %q\n%s", got, tt.codes, out)
			}
		})
	}
}

func TestText(t *testing.T) {
	out, code, err := execute(t, filepath.Join(examples, "loopback-bridge.conflist"))
	if code != ExitFindings {
		t.Fatalf("exit code %d (%v), want %d", code, err, ExitFindings)
	}
	for _, want := range []string{
		`network "loopback-bridge", cniVersion 1.0.0`,
		"  1  bridge    simulated: interface and IPAM host-local\n",
		"  2  portmap   skipped:",
		"  3  fibguard  the check itself",
		"  host  bridge  addr add 127.16.0.1/16 dev cni0\n",
		"pod: eth0 127.16.0.2/16 gateway 127.16.0.1; host side: cni0\n",
		"\nFG001 error: pod IP 127.16.0.2 ",
		"\n    table main: matched 127.16.0.0/16 dev cni0 table main proto kernel scope link src 127.16.0.1\n",
		"\n  fix: ",
		"\nfibguard would refuse this pod: 4 findings at error level\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(err.Error(), "4 findings at error level") {
		t.Errorf("error %q: want the count of error findings", err)
	}
}

func TestJSON(t *testing.T) {
	out, code, err := execute(t, filepath.Join(examples, "ptp-kindnet.conflist"), "-o", "json")
	if code != ExitClean || err != nil {
		t.Fatalf("exit code %d (%v)", code, err)
	}
	var rep struct {
		Mode      string `json:"mode"`
		Simulated struct {
			CNIVersion    string `json:"cniVersion"`
			HostInterface string `json:"hostInterface"`
			IPs           []struct {
				Interface, Address, Gateway string
			} `json:"ips"`
			Plugins []struct {
				Type      string `json:"type"`
				Simulated bool   `json:"simulated"`
			} `json:"plugins"`
			Result struct {
				CNIVersion string `json:"cniVersion"`
			} `json:"result"`
		} `json:"simulated"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	s := rep.Simulated
	if rep.Mode != "enforce" || s.CNIVersion != "0.3.1" || s.Result.CNIVersion != "0.3.1" {
		t.Errorf("mode %q, cniVersion %q, result version %q: want enforce, 0.3.1, 0.3.1", rep.Mode, s.CNIVersion, s.Result.CNIVersion)
	}
	if len(s.IPs) != 1 || s.IPs[0].Address != "10.244.0.2/24" || s.IPs[0].Gateway != "10.244.0.1" || s.IPs[0].Interface != "eth0" {
		t.Errorf("ips %+v: want eth0 10.244.0.2/24 gateway 10.244.0.1", s.IPs)
	}
	if len(s.Plugins) != 3 || !s.Plugins[0].Simulated || s.Plugins[1].Simulated || s.Plugins[2].Type != "fibguard" {
		t.Errorf("plugins %+v: want ptp simulated, portmap and fibguard not", s.Plugins)
	}
}

// writeFile writes a file into a test's temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const bridgeEntry = `{"type": "bridge", "isGateway": true, "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.0.0.0/24", "gateway": "10.0.0.254", "rangeStart": "10.0.0.100"}]]}}`

func TestUsageErrors(t *testing.T) {
	good := filepath.Join(examples, "healthy-bridge.conflist")
	conf := func(plugins string) string {
		return writeFile(t, "x.conflist", `{"cniVersion": "1.0.0", "name": "x", "plugins": [`+plugins+`]}`)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no conflist", nil, "check needs CONFLIST"},
		{"two conflists", []string{good, good}, "check takes CONFLIST only"},
		{"bad output format", []string{good, "-o", "xml"}, `-o "xml": want text, json or yaml`},
		{"missing file", []string{filepath.Join(t.TempDir(), "none.conflist")}, "none.conflist: does not exist"},
		{"malformed JSON", []string{writeFile(t, "bad.conflist", `{"name": "x", "plugins": [`)}, "not valid JSON at line 1, column 26: unexpected end of JSON input"},
		{"no plugins", []string{writeFile(t, "empty.conflist", `{"cniVersion": "1.0.0", "name": "x", "plugins": []}`)}, "no plugins in list"},
		{"no cniVersion", []string{writeFile(t, "nov.conflist", `{"name": "x", "plugins": [`+bridgeEntry+`]}`)}, "no cniVersion"},
		{"nothing to simulate", []string{conf(`{"type": "macvlan", "master": "eth0", "ipam": {"type": "dhcp"}}, {"type": "fibguard"}`)}, "nothing to simulate"},
		{"unknown IPAM", []string{conf(`{"type": "bridge", "ipam": {"type": "dhcp"}}`)}, `ipam "dhcp" is not simulated`},
		{"fibguard first", []string{conf(`{"type": "fibguard"}, ` + bridgeEntry)}, "fibguard is plugin 1, before bridge (plugin 2)"},
		{"bad fibguard mode", []string{conf(bridgeEntry + `, {"type": "fibguard", "mode": "strict"}`)}, `mode: "strict"`},
		{"unknown check code", []string{conf(bridgeEntry + `, {"type": "fibguard", "checks": {"FG999": "off"}}`)}, `unknown check code "FG999"`},
		{"bad service CIDR", []string{conf(bridgeEntry + `, {"type": "fibguard", "serviceCIDRs": ["10.96.0.0"]}`)}, "serviceCIDRs[0]"},
		// Settings that change no finding but fail every ADD of the plugin.
		{"relative logFile", []string{conf(bridgeEntry + `, {"type": "fibguard", "logFile": "fibguard.log"}`)}, `logFile: "fibguard.log" is not an absolute path`},
		{"bad eventTimeout", []string{conf(bridgeEntry + `, {"type": "fibguard", "eventTimeout": "soon"}`)}, `eventTimeout: "soon"`},
		{"netns and snapshot", []string{good, "--netns", "x", "--snapshot", "y"}, "exclude each other"},
		{"missing snapshot", []string{good, "--snapshot", filepath.Join(t.TempDir(), "none.json")}, "none.json: does not exist"},
		{"missing netns", []string{good, "--netns", "fibguard-no-such-netns"}, "network namespace fibguard-no-such-netns: "},
		{"netns and ip-dump", []string{good, "--netns", "x", "--ip-dump", "y"}, "exclude each other"},
		{"missing ip-dump", []string{good, "--ip-dump", filepath.Join(t.TempDir(), "none")}, "none: does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code, err := execute(t, tt.args...)
			if code != ExitUsage {
				t.Fatalf("exit code %d (%v), want %d\n%s", code, err, ExitUsage, out)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to say %q", err, tt.want)
			}
			if out != "" {
				t.Errorf("a usage error printed a report:\n%s", out)
			}
		})
	}
}

// TestGuardConfig checks that fibguard's entry changes the findings as it
// changes the plugin's: overrides, disabled checks, the mode, the cluster's
// ranges.
func TestGuardConfig(t *testing.T) {
	const warnVerdict = "mode warn: fibguard would let this pod through, with a Warning Event (PodNetworkWarning) on the pod for 1 finding at error level"
	conf := func(guard string) string {
		return writeFile(t, "x.conflist", `{"cniVersion": "1.0.0", "name": "x", "plugins": [`+bridgeEntry+`, `+guard+`]}`)
	}
	tests := []struct {
		name    string
		guard   string
		code    int
		codes   []string
		verdict string
		strict  bool
	}{
		{"defaults", `{"type": "fibguard"}`, ExitFindings, []string{"FG003"}, "fibguard would refuse this pod: 1 finding at error level", false},
		{"downgraded to a warning", `{"type": "fibguard", "checks": {"FG003": "warning"}}`, ExitClean, []string{"FG003"}, "fibguard would accept this pod, with 1 warning", false},
		{"disabled", `{"type": "fibguard", "checks": {"FG003": "off"}}`, ExitClean, []string{}, "fibguard would accept this pod: no findings", false},
		{"warn mode", `{"type": "fibguard", "mode": "warn"}`, ExitClean, []string{"FG003"}, warnVerdict, false},
		{"warn mode, --strict", `{"type": "fibguard", "mode": "warn"}`, ExitFindings, []string{"FG003"}, warnVerdict, true},
		{"enforce, --strict", `{"type": "fibguard"}`, ExitFindings, []string{"FG003"}, "fibguard would refuse this pod: 1 finding at error level", true},
		{"only a warning, --strict", `{"type": "fibguard", "checks": {"FG003": "warning"}}`, ExitClean, []string{"FG003"}, "fibguard would accept this pod, with 1 warning", true},
		{"service CIDR overlap", `{"type": "fibguard", "checks": {"FG003": "off"}, "serviceCIDRs": ["10.0.0.0/16"]}`, ExitFindings, []string{"FG030"}, "fibguard would refuse this pod: 1 finding at error level", false},
		// Keys are case-sensitive for the plugin, which ignores "Mode"
		// and "Checks" and enforces: so does the prediction.
		{"keys the plugin ignores", `{"type": "fibguard", "Mode": "warn", "Checks": {"FG003": "off"}}`, ExitFindings, []string{"FG003"}, "fibguard would refuse this pod: 1 finding at error level", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{conf(tt.guard), "-o", "json"}
			if tt.strict {
				args = append(args, "--strict")
			}
			out, code, err := execute(t, args...)
			if code != tt.code {
				t.Errorf("exit code %d (%v), want %d", code, err, tt.code)
			}
			if got := codes(t, out); !slices.Equal(got, tt.codes) {
				t.Errorf("findings %q, want %q", got, tt.codes)
			}
			var rep struct{ Verdict string }
			if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Verdict != tt.verdict {
				t.Errorf("verdict %q (%v), want %q", rep.Verdict, err, tt.verdict)
			}
		})
	}
	t.Run("no fibguard entry", func(t *testing.T) {
		p := writeFile(t, "x.conflist", `{"cniVersion": "1.0.0", "name": "x", "plugins": [`+bridgeEntry+`]}`)
		out, code, _ := execute(t, p)
		if code != ExitFindings || !strings.Contains(out, "no fibguard entry") {
			t.Errorf("exit code %d, want %d and a note on the missing entry:\n%s", code, ExitFindings, out)
		}
	})
}

// TestSnapshot checks a node read from a snapshot: one where a more
// specific route already takes part of the pod network.
func TestSnapshot(t *testing.T) {
	node := examplenode.Typical()
	if err := node.Apply(fib.AddRoute{Route: fib.Route{Dst: netip.MustParsePrefix("10.244.0.0/25"), Protocol: "static",
		NextHops: []fib.NextHop{{Link: "eth0", Gateway: netip.MustParseAddr("10.0.0.1")}}}}); err != nil {
		t.Fatal(err)
	}
	var snap bytes.Buffer
	if err := node.Encode(&snap); err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, "node.json", snap.String())
	out, code, err := execute(t, filepath.Join(examples, "healthy-bridge.conflist"), "--snapshot", path, "-o", "json")
	if code != ExitFindings {
		t.Fatalf("exit code %d (%v), want %d\n%s", code, err, ExitFindings, out)
	}
	if got := codes(t, out); !slices.Equal(got, []string{"FG003"}) {
		t.Errorf("findings %q, want FG003 (shadowed by 10.244.0.0/25 via 10.0.0.1)", got)
	}
}

// ipDump writes the six `ip -j` dumps of the namespace into a new
// directory, made with the real ip(8), for --ip-dump.
func ipDump(t *testing.T, ns *nstest.NS) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range source.DumpFiles {
		out, err := ns.IP(strings.Fields(f.Command)[1:]...)
		if err != nil {
			t.Fatalf("%s: %v", f.Command, err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.Name), out, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestLiveNetns models the node from a namespace the test builds, live and
// from its `ip -j` dumps (--ip-dump): a node with a blackhole route over
// the pod network refuses the pod.
func TestLiveNetns(t *testing.T) {
	ns := nstest.NewWithLoUp(t)
	if err := ns.Batch([]string{
		"link add eth0 type veth peer name eth0p",
		"link set eth0 up",
		"link set eth0p up",
		"addr add 10.0.0.10/24 dev eth0",
		"route add default via 10.0.0.1 dev eth0",
	}); err != nil {
		t.Fatal(err)
	}
	if err := ns.Settle(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	healthy := filepath.Join(examples, "healthy-bridge.conflist")
	for _, src := range [][]string{{"--netns", ns.Path()}, {"--ip-dump", ipDump(t, ns)}} {
		out, code, err := execute(t, append([]string{healthy, "-o", "json"}, src...)...)
		if code != ExitClean {
			t.Fatalf("clean node, %s: exit code %d (%v)\n%s", src[0], code, err, out)
		}
	}
	if _, err := ns.IP("route", "add", "blackhole", "10.244.0.0/24"); err != nil {
		t.Fatal(err)
	}
	for _, src := range [][]string{{"--netns", ns.Name()}, {"--ip-dump", ipDump(t, ns)}} {
		out, code, err := execute(t, append([]string{healthy, "-o", "json"}, src...)...)
		if code != ExitFindings {
			t.Fatalf("blackholed node, %s: exit code %d (%v)\n%s", src[0], code, err, out)
		}
		if got := codes(t, out); !slices.Equal(got, []string{"FG004"}) {
			t.Errorf("%s: findings %q, want FG004 (blackhole)", src[0], got)
		}
	}
}

func TestExitCode(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want int
	}{
		{nil, ExitClean},
		{io.EOF, ExitUsage},
		{&cli.ExitError{Code: ExitFindings, Err: io.EOF}, ExitFindings},
		{fmt.Errorf("wrapped: %w", cli.Failed(io.EOF)), ExitFindings},
	} {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

// TestWarnModeText: a conflist whose fibguard entry is in warn mode
// prints its findings and says the pod goes through with a Warning
// Event, and exits 0; --strict makes the same findings exit 1; no tab
// characters anywhere.
func TestWarnModeText(t *testing.T) {
	p := writeFile(t, "warn.conflist", `{"cniVersion": "1.0.0", "name": "x", "plugins": [`+bridgeEntry+`, {"type": "fibguard", "mode": "warn"}]}`)
	for _, tt := range []struct {
		args []string
		code int
	}{{nil, ExitClean}, {[]string{"--strict"}, ExitFindings}} {
		out, code, err := execute(t, append([]string{p}, tt.args...)...)
		if code != tt.code {
			t.Errorf("%v: exit code %d (%v), want %d", tt.args, code, err, tt.code)
		}
		for _, want := range []string{"FG003 error:", "fix: ", "mode warn: fibguard would let this pod through, with a Warning Event (PodNetworkWarning) on the pod for 1 finding at error level\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("%v: output lacks %q:\n%s", tt.args, want, out)
			}
		}
		if strings.ContainsRune(out, '\t') {
			t.Errorf("%v: a tab in the output:\n%s", tt.args, out)
		}
	}
}
