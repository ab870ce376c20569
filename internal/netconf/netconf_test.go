package netconf

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/fibguard/fibguard/checker"
	"github.com/fibguard/fibguard/internal/netconf/netconftest"
)

// Configurations as the runtime hands them to the plugin.
const (
	prevResult100 = netconftest.PrevResult100
	prevResult040 = netconftest.PrevResult040
)

var confJSON = netconftest.JSON

func TestParseDefaults(t *testing.T) {
	c, err := Parse(confJSON(t, "1.0.0", map[string]any{
		"prevResult":     json.RawMessage(prevResult100),
		"runtimeConfig":  map[string]any{"portMappings": []any{}},
		"someRuntimeKey": map[string]any{"x": 1},
	}))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.Mode != ModeEnforce || c.FailurePolicy != FailurePolicyFail || c.LogLevel != slog.LevelInfo ||
		!c.Events || c.EventTimeout != 2*time.Second || c.LogFile != "" || c.NodeStatus || c.NodeStatusFile != "/run/fibguard/node-status.json" {
		t.Errorf("defaults: got %+v", c)
	}
	if c.Options.Disabled != nil || c.Options.Severity != nil {
		t.Errorf("options: got %+v, want none", c.Options)
	}
	if c.PrevResult == nil || c.Result == nil {
		t.Fatalf("prevResult not parsed: %+v", c)
	}
	if got := c.Result.IPs[0].Address.String(); got != "10.22.0.2/24" {
		t.Errorf("result address: got %s", got)
	}
}

func TestParseFields(t *testing.T) {
	c, err := Parse(confJSON(t, "1.1.0", map[string]any{
		"mode":           "warn",
		"checks":         map[string]string{"FG001": "warning", "FG025": "error", "FG040": "off"},
		"serviceCIDRs":   []string{"10.96.0.1/12", "fd00:96::/108"},
		"clusterCIDRs":   []string{"10.244.0.0/16"},
		"failurePolicy":  "Ignore",
		"logFile":        "/var/log/fibguard.log",
		"logLevel":       "debug",
		"kubeconfig":     "/etc/cni/net.d/fibguard-kubeconfig",
		"events":         "off",
		"eventTimeout":   "500ms",
		"nodeName":       "node-1.example",
		"nodeStatus":     "on",
		"nodeStatusFile": "/run/x/status.json",
	}))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := &Config{
		CNIVersion: "1.1.0",
		Name:       "test-net",
		Mode:       ModeWarn,
		Options: checker.Options{
			Disabled: map[checker.Code]bool{"FG040": true},
			Severity: map[checker.Code]checker.Severity{"FG001": checker.SeverityWarning, "FG025": checker.SeverityError},
		},
		ServiceCIDRs:   []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12"), netip.MustParsePrefix("fd00:96::/108")},
		ClusterCIDRs:   []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")},
		FailurePolicy:  FailurePolicyIgnore,
		LogFile:        "/var/log/fibguard.log",
		LogLevel:       slog.LevelDebug,
		Kubeconfig:     "/etc/cni/net.d/fibguard-kubeconfig",
		Events:         false,
		EventTimeout:   500 * time.Millisecond,
		NodeName:       "node-1.example",
		NodeStatus:     true,
		NodeStatusFile: "/run/x/status.json",
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
}

// TestParsePrevResultVersions: a prevResult is parsed in the
// config's version and converted to the current one for the checks.
func TestParsePrevResultVersions(t *testing.T) {
	for _, tc := range []struct {
		cniVersion, prev string
	}{
		{"0.3.0", prevResult040},
		{"0.3.1", prevResult040},
		{"0.4.0", prevResult040},
		{"1.0.0", prevResult100},
		{"1.1.0", strings.Replace(prevResult100, `"1.0.0"`, `"1.1.0"`, 1)},
	} {
		t.Run(tc.cniVersion, func(t *testing.T) {
			c, err := Parse(confJSON(t, tc.cniVersion, map[string]any{"prevResult": json.RawMessage(tc.prev)}))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if c.Result.CNIVersion != current.ImplementedSpecVersion {
				t.Errorf("converted result has version %s", c.Result.CNIVersion)
			}
			if len(c.Result.Interfaces) != 3 || len(c.Result.IPs) != 1 || *c.Result.IPs[0].Interface != 2 {
				t.Errorf("converted result: %+v", c.Result)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stdin []byte
		code  uint
		// every string must appear in the message
		want []string
	}{
		{"not JSON", []byte(`{"cniVersion":`), types.ErrDecodingFailure, []string{"decode network configuration"}},
		{"JSON array", []byte(`[1,2]`), types.ErrDecodingFailure, []string{"decode network configuration"}},
		{"JSON null", []byte(`null`), types.ErrDecodingFailure, []string{"not a JSON object"}},
		{"prevResult of another version", confJSON(t, "1.0.0", map[string]any{"prevResult": json.RawMessage(prevResult040)}),
			types.ErrIncompatibleCNIVersion, []string{`prevResult has cniVersion "0.4.0"`, `"1.0.0"`}},
		{"prevResult with a bad address", confJSON(t, "1.0.0", map[string]any{
			"prevResult": map[string]any{"cniVersion": "1.0.0", "ips": []any{map[string]any{"address": "10.0.0.300/24"}}}}),
			types.ErrDecodingFailure, []string{"decode prevResult"}},
		// The CNI library reads these, and prints them back as "<nil>",
		// which no runtime reads: they cannot be passed on.
		{"prevResult with an IP without an address", confJSON(t, "1.1.0", map[string]any{
			"prevResult": map[string]any{"ips": []any{map[string]any{"gateway": "10.0.0.1"}}}}),
			types.ErrDecodingFailure, []string{"decode prevResult: ips[0]: no address"}},
		{"prevResult with a route without a destination", confJSON(t, "0.4.0", map[string]any{
			"prevResult": map[string]any{"ips": []any{map[string]any{"version": "4", "address": "10.0.0.2/24"}}, "routes": []any{map[string]any{"gw": "10.0.0.1"}}}}),
			types.ErrDecodingFailure, []string{"decode prevResult: routes[0]: no dst"}},
		{"prevResult not an object", confJSON(t, "1.0.0", map[string]any{"prevResult": "x"}),
			types.ErrInvalidNetworkConfig, []string{"prevResult: got a JSON string, want an object"}},
		{"bad mode", confJSON(t, "1.0.0", map[string]any{"mode": "audit"}),
			types.ErrInvalidNetworkConfig, []string{`mode: "audit" is not one of "enforce", "warn"`}},
		{"unknown check code", confJSON(t, "1.0.0", map[string]any{"checks": map[string]string{"FG999": "off", "FG001": "off"}}),
			types.ErrInvalidNetworkConfig, []string{`unknown check code "FG999"`, "known: FG001"}},
		{"bad check setting", confJSON(t, "1.0.0", map[string]any{"checks": map[string]string{"FG001": "fatal"}}),
			types.ErrInvalidNetworkConfig, []string{`FG001: "fatal" is not one of`}},
		{"every problem at once", confJSON(t, "1.0.0", map[string]any{
			"mode":           5,
			"checks":         []string{"FG001"},
			"serviceCIDRs":   []string{"10.96.0.0", "10.96.0.0/12"},
			"clusterCIDRs":   "10.244.0.0/16",
			"failurePolicy":  "fail",
			"logFile":        "fibguard.log",
			"logLevel":       "trace",
			"kubeconfig":     "kubeconfig",
			"events":         true,
			"eventTimeout":   "-1s",
			"nodeName":       "Node_1",
			"nodeStatus":     "yes",
			"nodeStatusFile": "status.json",
		}), types.ErrInvalidNetworkConfig, []string{
			`nodeStatus: "yes" is not one of "on", "off"`,
			`nodeStatusFile: "status.json" is not an absolute path`,
			"mode: got a JSON number, want a string",
			"checks: got a JSON array, want an object",
			`serviceCIDRs[0]: "10.96.0.0" is not a CIDR prefix`,
			"clusterCIDRs: got a JSON string, want an array",
			`failurePolicy: "fail" is not one of "Fail", "Ignore"`,
			`logFile: "fibguard.log" is not an absolute path`,
			`logLevel: "trace"`,
			`kubeconfig: "kubeconfig" is not an absolute path`,
			"events: got a JSON bool, want a string",
			`eventTimeout: "-1s" is not a positive duration`,
			`nodeName: "Node_1" is not a valid Kubernetes node name`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.stdin)
			var e *types.Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v (%T), want a *types.Error", err, err)
			}
			if e.Code != tc.code {
				t.Errorf("code: got %d, want %d (%s)", e.Code, tc.code, e.Msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(e.Error(), w) {
					t.Errorf("error %q lacks %q", e.Error(), w)
				}
			}
		})
	}
}

// FuzzParse: Parse never panics, fails only with a CNI error of a spec
// code, and the problems of a decoded configuration are never empty
// strings.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"cniVersion":"1.0.0","name":"n","type":"fibguard","prevResult":` + prevResult100 + `}`,
		`{"cniVersion":"0.4.0","name":"n","type":"fibguard","prevResult":` + prevResult040 + `}`,
		`{"cniVersion":"1.0.0","name":"n","prevResult":` + prevResult040 + `}`,
		`{"cniVersion":"1.1.0","name":"n","mode":"warn","checks":{"FG001":"off","FG999":"x"},"serviceCIDRs":["10.96.0.0/12","x"]}`,
		`{"cniVersion":"1.1.0","name":"n","failurePolicy":"Ignore","logFile":"/tmp/x","logLevel":"debug","eventTimeout":"2s","nodeName":"a.b"}`,
		`{"cniVersion":"1.1.0","mode":5,"checks":[],"clusterCIDRs":{},"events":null,"prevResult":{"ips":[{"address":"1.2.3.4"}]}}`,
		`{"prevResult":{"cniVersion":"9.9.9"}}`,
		`[]`, `null`, `"x"`, `{`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, stdin []byte) {
		c, err := Parse(stdin)
		if err != nil {
			var e *types.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not a *types.Error", err, err)
			}
			switch e.Code {
			case types.ErrDecodingFailure, types.ErrIncompatibleCNIVersion, types.ErrInvalidNetworkConfig:
			default:
				t.Fatalf("unexpected code %d: %v", e.Code, e)
			}
			if e.Msg == "" {
				t.Fatal("empty error message")
			}
		} else if c == nil || (c.Mode != ModeEnforce && c.Mode != ModeWarn) {
			t.Fatalf("accepted config is not valid: %+v", c)
		}
		var nc NetConf
		if _, err := nc.decode(stdin); err != nil {
			return
		}
		nc.setDefaults()
		for _, p := range nc.problems() {
			if strings.TrimSpace(p) == "" {
				t.Fatalf("empty problem in %q", nc.problems())
			}
		}
	})
}

// TestIsNodeName compares isNodeName with the regular expression of a DNS
// subdomain (RFC 1123) it replaces.
func TestIsNodeName(t *testing.T) {
	re := regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	for _, s := range []string{
		"", "a", "node-1", "node-1.example.com", "-a", "a-", "a..b", ".a", "a.", "A", "a_b", "1", "a-b-c.d-e",
		"a.-b", "a.b-", "é", "a b", "node.1", "x--y",
	} {
		if got, want := isNodeName(s), re.MatchString(s); got != want {
			t.Errorf("isNodeName(%q) = %v, want %v", s, got, want)
		}
	}
}

// FuzzIsNodeName checks isNodeName against the regular expression on any
// input.
func FuzzIsNodeName(f *testing.F) {
	re := regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	for _, s := range []string{"node-1.example.com", "a..b", "-a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isNodeName(s), re.MatchString(s); got != want {
			t.Errorf("isNodeName(%q) = %v, want %v", s, got, want)
		}
	})
}

// TestPassOn: the prevResult is kept as given, for ADD to print, exactly
// when it names the config's version; one without a cniVersion, or with
// another version the library reads, must be printed from the parsed
// result in the config's version.
func TestPassOn(t *testing.T) {
	unversioned := strings.Replace(prevResult100, `"cniVersion":"1.0.0",`, "", 1)
	if unversioned == prevResult100 {
		t.Fatalf("test input: no cniVersion to remove in %s", prevResult100)
	}
	for _, tc := range []struct {
		name, cniVersion, prev string
		asGiven                bool
	}{
		{"same version", "1.0.0", prevResult100, true},
		{"same version, 0.4.0", "0.4.0", prevResult040, true},
		{"no cniVersion", "1.0.0", unversioned, false},
		{"another version of the same type", "0.3.1", prevResult040, false},
		{"another version, converted", "1.1.0", prevResult100, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(confJSON(t, tc.cniVersion, map[string]any{"prevResult": json.RawMessage(tc.prev)}))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			// confJSON writes the prevResult compacted: that is how it is given.
			var given bytes.Buffer
			if err := json.Compact(&given, []byte(tc.prev)); err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.asGiven && !bytes.Equal(c.PassOn, given.Bytes()):
				t.Errorf("PassOn = %s, want the prevResult as given: %s", c.PassOn, given.Bytes())
			case !tc.asGiven && c.PassOn != nil:
				t.Errorf("PassOn = %s, want nil (the result must be printed in %s)", c.PassOn, tc.cniVersion)
			}
		})
	}
}
