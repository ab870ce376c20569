package plugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/types/create"

	"github.com/fibguard/fibguard/checker"
	"github.com/fibguard/fibguard/internal/nodestatus"
)

// Mode is what ADD does with findings of severity error.
type Mode string

// Modes.
const (
	// ModeEnforce rejects the pod (the default).
	ModeEnforce Mode = "enforce"
	// ModeWarn only reports: ADD and CHECK never fail because of findings.
	ModeWarn Mode = "warn"
)

// FailurePolicy is what an internal error (fibguard cannot check the pod,
// for example a netlink failure or a bug) does to ADD and CHECK.
type FailurePolicy string

// Failure policies, spelled as in Kubernetes admission webhooks.
const (
	// FailurePolicyFail fails the command with CodeInternal (the default).
	FailurePolicyFail FailurePolicy = "Fail"
	// FailurePolicyIgnore logs the error and passes the pod unchecked.
	FailurePolicyIgnore FailurePolicy = "Ignore"
)

// Per-check settings accepted in the checks map.
const (
	checkError   = "error"
	checkWarning = "warning"
	checkOff     = "off"
)

// Defaults.
const (
	defaultEventTimeout = 2 * time.Second
	defaultLogLevel     = "info"
)

// logLevels maps the logLevel values to slog levels.
var logLevels = map[string]slog.Level{
	"error": slog.LevelError,
	"warn":  slog.LevelWarn,
	"info":  slog.LevelInfo,
	"debug": slog.LevelDebug,
}

// NetConf is fibguard's plugin configuration as the runtime passes it on
// stdin: the plugin's entry of the conflist plus the fields the runtime
// inserts (cniVersion, name, prevResult). Fields that fibguard does not
// know, such as runtimeConfig or those of other tools, are ignored. Keys
// are case-sensitive. docs/plugin.md documents every field.
type NetConf struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	// RawPrevResult is the prevResult as the runtime wrote it: parsed
	// straight into its version's type, without a round trip through a
	// generic map, which cost a tenth of a millisecond on every ADD.
	RawPrevResult json.RawMessage `json:"prevResult"`

	Mode          Mode              `json:"mode"`
	Checks        map[string]string `json:"checks"`
	ServiceCIDRs  []string          `json:"serviceCIDRs"`
	ClusterCIDRs  []string          `json:"clusterCIDRs"`
	FailurePolicy FailurePolicy     `json:"failurePolicy"`
	LogFile       string            `json:"logFile"`
	LogLevel      string            `json:"logLevel"`

	// The Kubernetes integration's fields: where and how to record the
	// Event of a rejection (event.go).
	Kubeconfig   string `json:"kubeconfig"`
	Events       string `json:"events"`
	EventTimeout string `json:"eventTimeout"`
	NodeName     string `json:"nodeName"`

	// The node agent's verdict for STATUS (docs/agent.md).
	NodeStatus     string `json:"nodeStatus"`
	NodeStatusFile string `json:"nodeStatusFile"`
}

// ConfigError lists every problem of a configuration, so one round of
// editing fixes them all.
type ConfigError struct {
	Problems []string
}

func (e *ConfigError) Error() string {
	return "invalid configuration: " + strings.Join(e.Problems, "; ")
}

// Config is a validated configuration with its values parsed and defaults
// applied; only parseConfig makes one.
type Config struct {
	CNIVersion string
	Name       string
	// PrevResult is the result of the plugins before fibguard, in the
	// config's version, as the runtime gave it; nil when there is none.
	PrevResult types.Result
	// Result is PrevResult converted to the current result version, for
	// the checks; nil when there is no PrevResult.
	Result *current.Result

	Mode          Mode
	Options       checker.Options
	ServiceCIDRs  []netip.Prefix
	ClusterCIDRs  []netip.Prefix
	FailurePolicy FailurePolicy
	LogFile       string
	LogLevel      slog.Level

	Kubeconfig   string
	Events       bool
	EventTimeout time.Duration
	NodeName     string

	// NodeStatus makes STATUS fail while the node agent's verdict
	// (NodeStatusFile) says the node's pod network is untenable.
	NodeStatus     bool
	NodeStatusFile string
}

// parseConfig turns the stdin of a command into a Config, in a fixed
// order: decode every known field (collecting type errors), parse the
// prevResult, apply defaults, validate (collecting every problem). Its
// errors are *types.Error with the spec's codes: ErrDecodingFailure when
// stdin is not a JSON object or the prevResult cannot be decoded,
// ErrIncompatibleCNIVersion when the prevResult has another version than
// the config, ErrInvalidNetworkConfig listing every problem otherwise.
func parseConfig(stdin []byte) (*Config, error) {
	var nc NetConf
	problems, err := nc.decode(stdin)
	if err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "fibguard: "+err.Error(), "")
	}
	prev, res, err := parsePrevResult(nc.CNIVersion, nc.RawPrevResult)
	if err != nil {
		return nil, err
	}
	nc.setDefaults()
	var ce *ConfigError
	if err := nc.Validate(); errors.As(err, &ce) {
		problems = append(problems, ce.Problems...)
	}
	if len(problems) > 0 {
		ce := &ConfigError{Problems: problems}
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "fibguard: "+ce.Error(), "")
	}
	c := nc.config()
	c.PrevResult, c.Result = prev, res
	return c, nil
}

// decode fills the known fields from stdin one by one, so that a value of
// the wrong JSON type is reported as a problem of its field, with the
// other fields' problems, instead of stopping at the first. The error is
// for stdin that is not a JSON object at all.
func (nc *NetConf) decode(stdin []byte) ([]string, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(stdin, &raw); err != nil {
		return nil, fmt.Errorf("decode network configuration: %w", err)
	}
	if raw == nil {
		return nil, errors.New("decode network configuration: not a JSON object")
	}
	fields := []struct {
		key string
		dst any
	}{
		{"cniVersion", &nc.CNIVersion},
		{"name", &nc.Name},
		{"type", &nc.Type},
		{"prevResult", &nc.RawPrevResult},
		{"mode", &nc.Mode},
		{"checks", &nc.Checks},
		{"serviceCIDRs", &nc.ServiceCIDRs},
		{"clusterCIDRs", &nc.ClusterCIDRs},
		{"failurePolicy", &nc.FailurePolicy},
		{"logFile", &nc.LogFile},
		{"logLevel", &nc.LogLevel},
		{"kubeconfig", &nc.Kubeconfig},
		{"events", &nc.Events},
		{"eventTimeout", &nc.EventTimeout},
		{"nodeName", &nc.NodeName},
		{"nodeStatus", &nc.NodeStatus},
		{"nodeStatusFile", &nc.NodeStatusFile},
	}
	var problems []string
	if v, ok := raw["prevResult"]; ok {
		if kind := jsonKind(v); kind != "object" && kind != "null" {
			problems = append(problems, fmt.Sprintf("prevResult: got a JSON %s, want an object", kind))
			delete(raw, "prevResult")
		}
	}
	for _, f := range fields {
		v, ok := raw[f.key]
		if !ok {
			continue
		}
		if err := json.Unmarshal(v, f.dst); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %s", f.key, jsonTypeProblem(err)))
		}
	}
	return problems, nil
}

// jsonKind names the kind of a valid JSON value by its first byte, as
// encoding/json's type errors name them.
func jsonKind(v json.RawMessage) string {
	v = bytes.TrimLeft(v, " \t\r\n")
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// jsonTypeProblem describes a field's decoding error without Go type
// names, which mean nothing to the person editing the conflist.
func jsonTypeProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := te.Type.Kind().String()
		switch want {
		case "slice":
			want = "an array"
		case "map":
			want = "an object"
		default:
			want = "a " + want
		}
		return fmt.Sprintf("got a JSON %s, want %s", te.Value, want)
	}
	return err.Error()
}

// parsePrevResult parses the prevResult in the config's version, as the
// CNI library does (version.ParsePrevResult: a prevResult without a
// cniVersion, or with an empty one, is read as the config's version), and
// converts it to the current version for the checks. A prevResult that
// names another version than the config's is refused with
// ErrIncompatibleCNIVersion: the runtime must hand over the previous
// plugin's result in the version it asked that plugin for.
func parsePrevResult(cniVersion string, raw json.RawMessage) (types.Result, *current.Result, error) {
	if jsonKind(raw) != "object" {
		return nil, nil, nil // absent or null; decode refused other kinds
	}
	var v struct {
		CNIVersion string `json:"cniVersion"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, nil, types.NewError(types.ErrDecodingFailure, "fibguard: decode prevResult: "+err.Error(), "")
	}
	if v.CNIVersion == "" {
		var err error
		if raw, err = withVersion(raw, cniVersion); err != nil {
			return nil, nil, types.NewError(types.ErrDecodingFailure, "fibguard: decode prevResult: "+err.Error(), "")
		}
	}
	prev, err := create.Create(cniVersion, raw)
	if err != nil {
		if v.CNIVersion != "" && v.CNIVersion != cniVersion {
			return nil, nil, types.NewError(types.ErrIncompatibleCNIVersion,
				fmt.Sprintf("fibguard: prevResult has cniVersion %q, the configuration %q", v.CNIVersion, cniVersion),
				err.Error())
		}
		return nil, nil, types.NewError(types.ErrDecodingFailure, "fibguard: decode prevResult: could not parse prevResult: "+err.Error(), "")
	}
	res, err := current.NewResultFromResult(prev)
	if err != nil {
		return nil, nil, types.NewError(types.ErrDecodingFailure,
			fmt.Sprintf("fibguard: convert prevResult from version %s: %v", cniVersion, err), "")
	}
	if err := passable(res); err != nil {
		return nil, nil, types.NewError(types.ErrDecodingFailure, "fibguard: decode prevResult: "+err.Error(), "")
	}
	return prev, res, nil
}

// passable refuses a prevResult that cannot be passed on as it came: the
// CNI library reads an IP without an address, or a route without a
// destination, and prints it back as "<nil>", which no runtime reads
// (FuzzPassOn found it). The spec requires both.
func passable(res *current.Result) error {
	for i, ipc := range res.IPs {
		if ipc == nil || ipc.Address.IP == nil {
			return fmt.Errorf("ips[%d]: no address", i)
		}
	}
	for i, r := range res.Routes {
		if r == nil || r.Dst.IP == nil {
			return fmt.Errorf("routes[%d]: no dst", i)
		}
	}
	return nil
}

// withVersion returns the JSON object obj with its cniVersion set to v.
func withVersion(obj json.RawMessage, v string) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		return nil, err
	}
	ver, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	for k := range m {
		if strings.EqualFold(k, "cniVersion") {
			delete(m, k)
		}
	}
	m["cniVersion"] = ver
	return json.Marshal(m)
}

// setDefaults fills the fields left out.
func (nc *NetConf) setDefaults() {
	if nc.Mode == "" {
		nc.Mode = ModeEnforce
	}
	if nc.FailurePolicy == "" {
		nc.FailurePolicy = FailurePolicyFail
	}
	if nc.LogLevel == "" {
		nc.LogLevel = defaultLogLevel
	}
	if nc.Events == "" {
		nc.Events = "on"
	}
	if nc.EventTimeout == "" {
		nc.EventTimeout = defaultEventTimeout.String()
	}
	if nc.NodeStatus == "" {
		nc.NodeStatus = "off"
	}
	if nc.NodeStatusFile == "" {
		nc.NodeStatusFile = nodestatus.DefaultPath
	}
}

// isNodeName reports whether s has the form of a Kubernetes node name, a
// DNS subdomain (RFC 1123): dot-separated labels of lowercase letters,
// digits and inner hyphens; the caller checks the length. It is written
// out rather than a regular expression, whose compilation at package
// initialisation every plugin process would pay.
func isNodeName(s string) bool {
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if !isLabelByte(label[i]) {
				return false
			}
		}
	}
	return true
}

// isLabelByte reports whether c may appear in a DNS label: a lowercase
// letter, a digit or a hyphen.
func isLabelByte(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-'
}

// Validate checks the values of a defaulted NetConf and returns a
// *ConfigError with every problem, or nil. It does not require a
// prevResult: DEL, STATUS and GC run without one; ADD and CHECK check
// for it themselves.
func (nc *NetConf) Validate() error {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }

	if nc.CNIVersion == "" {
		add("cniVersion: missing")
	}
	switch nc.Mode {
	case ModeEnforce, ModeWarn:
	default:
		add("mode: %q is not one of %q, %q", nc.Mode, ModeEnforce, ModeWarn)
	}
	var unknown []string
	for _, code := range slices.Sorted(maps.Keys(nc.Checks)) {
		if !checker.Known(checker.Code(code)) {
			unknown = append(unknown, strconv.Quote(code))
		}
		switch v := nc.Checks[code]; v {
		case checkError, checkWarning, checkOff:
		default:
			add("checks: %s: %q is not one of %q, %q, %q", code, v, checkError, checkWarning, checkOff)
		}
	}
	if len(unknown) > 0 {
		add("checks: unknown check code %s (known: %s)", strings.Join(unknown, ", "), knownCodes())
	}
	for _, f := range []struct {
		key  string
		list []string
	}{{"serviceCIDRs", nc.ServiceCIDRs}, {"clusterCIDRs", nc.ClusterCIDRs}} {
		for i, s := range f.list {
			if _, err := netip.ParsePrefix(s); err != nil {
				add("%s[%d]: %q is not a CIDR prefix such as 10.96.0.0/12 or fd00::/108", f.key, i, s)
			}
		}
	}
	switch nc.FailurePolicy {
	case FailurePolicyFail, FailurePolicyIgnore:
	default:
		add("failurePolicy: %q is not one of %q, %q", nc.FailurePolicy, FailurePolicyFail, FailurePolicyIgnore)
	}
	if nc.LogFile != "" && !filepath.IsAbs(nc.LogFile) {
		add("logFile: %q is not an absolute path", nc.LogFile)
	}
	if _, ok := logLevels[nc.LogLevel]; !ok {
		add("logLevel: %q is not one of \"error\", \"warn\", \"info\", \"debug\"", nc.LogLevel)
	}
	if nc.Kubeconfig != "" && !filepath.IsAbs(nc.Kubeconfig) {
		add("kubeconfig: %q is not an absolute path", nc.Kubeconfig)
	}
	switch nc.Events {
	case "on", "off":
	default:
		add("events: %q is not one of \"on\", \"off\"", nc.Events)
	}
	if d, err := time.ParseDuration(nc.EventTimeout); err != nil || d <= 0 {
		add("eventTimeout: %q is not a positive duration such as \"2s\"", nc.EventTimeout)
	}
	switch nc.NodeStatus {
	case "on", "off":
	default:
		add("nodeStatus: %q is not one of \"on\", \"off\"", nc.NodeStatus)
	}
	if !filepath.IsAbs(nc.NodeStatusFile) {
		add("nodeStatusFile: %q is not an absolute path", nc.NodeStatusFile)
	}
	if nc.NodeName != "" && (len(nc.NodeName) > 253 || !isNodeName(nc.NodeName)) {
		add("nodeName: %q is not a valid Kubernetes node name (a lowercase DNS subdomain)", nc.NodeName)
	}
	if len(p) == 0 {
		return nil
	}
	return &ConfigError{Problems: p}
}

// config converts a valid, defaulted NetConf; Validate has accepted every
// value it parses.
func (nc *NetConf) config() *Config {
	c := &Config{
		CNIVersion:    nc.CNIVersion,
		Name:          nc.Name,
		Mode:          nc.Mode,
		ServiceCIDRs:  parsePrefixes(nc.ServiceCIDRs),
		ClusterCIDRs:  parsePrefixes(nc.ClusterCIDRs),
		FailurePolicy: nc.FailurePolicy,
		LogFile:       nc.LogFile,
		LogLevel:      logLevels[nc.LogLevel],
		Kubeconfig:    nc.Kubeconfig,
		Events:        nc.Events == "on",
		NodeName:      nc.NodeName,

		NodeStatus:     nc.NodeStatus == "on",
		NodeStatusFile: nc.NodeStatusFile,
	}
	c.EventTimeout, _ = time.ParseDuration(nc.EventTimeout) // validated
	for code, v := range nc.Checks {
		switch v {
		case checkOff:
			if c.Options.Disabled == nil {
				c.Options.Disabled = map[checker.Code]bool{}
			}
			c.Options.Disabled[checker.Code(code)] = true
		case checkError, checkWarning:
			if c.Options.Severity == nil {
				c.Options.Severity = map[checker.Code]checker.Severity{}
			}
			c.Options.Severity[checker.Code(code)] = checker.Severity(v)
		}
	}
	return c
}

// parsePrefixes parses validated prefixes and masks their host bits, as
// Kubernetes does with its CIDR flags (10.96.0.1/12 means 10.96.0.0/12).
func parsePrefixes(list []string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// knownCodes lists the checks' codes for error messages.
func knownCodes() string {
	var codes []string
	for _, info := range checker.Catalog() {
		codes = append(codes, string(info.Code))
	}
	slices.Sort(codes)
	return strings.Join(codes, ", ")
}
