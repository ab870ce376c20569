package netconf

import (
	"cmp"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fibguard/fibguard/checker"
	"github.com/fibguard/fibguard/internal/nodestatus"
)

// Defaults of the fields that have one besides Mode and FailurePolicy.
const (
	defaultEventTimeout = 2 * time.Second
	defaultLogLevel     = "info"
	defaultEvents       = on
	defaultNodeStatus   = off
)

// The values of the on/off switches events and nodeStatus.
const (
	on  = "on"
	off = "off"
)

// Per-check settings accepted in the checks map.
const (
	checkError   = "error"
	checkWarning = "warning"
	checkOff     = "off"
)

// logLevels are the logLevel values, in the order messages list them, and
// their slog levels.
var logLevels = []struct {
	name  string
	level slog.Level
}{
	{"error", slog.LevelError},
	{"warn", slog.LevelWarn},
	{"info", slog.LevelInfo},
	{"debug", slog.LevelDebug},
}

// logLevel is the slog level named name.
func logLevel(name string) (slog.Level, bool) {
	for _, l := range logLevels {
		if l.name == name {
			return l.level, true
		}
	}
	return 0, false
}

// allowed are the values of each field that takes one of a few, in the
// order messages and docs/plugin.md list them.
var allowed = map[string][]string{
	"mode":          {string(ModeEnforce), string(ModeWarn)},
	"checks":        {checkError, checkWarning, checkOff},
	"failurePolicy": {string(FailurePolicyFail), string(FailurePolicyIgnore)},
	"logLevel":      logLevelNames(),
	"events":        {on, off},
	"nodeStatus":    {on, off},
}

func logLevelNames() []string {
	names := make([]string, len(logLevels))
	for i, l := range logLevels {
		names[i] = l.name
	}
	return names
}

// setDefaults fills the fields left out.
func (nc *NetConf) setDefaults() {
	nc.Mode = cmp.Or(nc.Mode, ModeEnforce)
	nc.FailurePolicy = cmp.Or(nc.FailurePolicy, FailurePolicyFail)
	nc.LogLevel = cmp.Or(nc.LogLevel, defaultLogLevel)
	nc.Events = cmp.Or(nc.Events, defaultEvents)
	nc.EventTimeout = cmp.Or(nc.EventTimeout, defaultEventTimeout.String())
	nc.NodeStatus = cmp.Or(nc.NodeStatus, defaultNodeStatus)
	nc.NodeStatusFile = cmp.Or(nc.NodeStatusFile, nodestatus.DefaultPath)
}

// problems lists what is wrong with the values of a defaulted NetConf,
// every problem at once; none when it is valid. It does not require a
// prevResult: DEL, STATUS and GC run without one; ADD and CHECK check for
// it themselves.
func (nc *NetConf) problems() []string {
	var p problems
	if nc.CNIVersion == "" {
		p.add("cniVersion: missing")
	}
	p.oneOf("mode", string(nc.Mode))
	p.checks(nc.Checks)
	p.prefixes("serviceCIDRs", nc.ServiceCIDRs)
	p.prefixes("clusterCIDRs", nc.ClusterCIDRs)
	p.oneOf("failurePolicy", string(nc.FailurePolicy))
	p.absPath("logFile", nc.LogFile, true)
	p.oneOf("logLevel", nc.LogLevel)
	p.absPath("kubeconfig", nc.Kubeconfig, true)
	p.oneOf("events", nc.Events)
	if d, err := time.ParseDuration(nc.EventTimeout); err != nil || d <= 0 {
		p.add("eventTimeout: %q is not a positive duration such as \"2s\"", nc.EventTimeout)
	}
	p.oneOf("nodeStatus", nc.NodeStatus)
	p.absPath("nodeStatusFile", nc.NodeStatusFile, false)
	if nc.NodeName != "" && (len(nc.NodeName) > 253 || !isNodeName(nc.NodeName)) {
		p.add("nodeName: %q is not a valid Kubernetes node name (a lowercase DNS subdomain)", nc.NodeName)
	}
	return p
}

// problems collects the problems of a configuration.
type problems []string

func (p *problems) add(format string, args ...any) {
	*p = append(*p, fmt.Sprintf(format, args...))
}

// oneOf adds a problem unless v is one of the values allowed for key.
func (p *problems) oneOf(key, v string) {
	p.oneOfIn(key, key, v)
}

// oneOfIn adds a problem, said of what, unless v is one of the values
// allowed for key.
func (p *problems) oneOfIn(what, key, v string) {
	if !slices.Contains(allowed[key], v) {
		p.add("%s: %q is not one of %s", what, v, quoteAll(allowed[key]))
	}
}

// checks adds the problems of the checks map: settings that are not
// allowed, each on its own, and the unknown codes together.
func (p *problems) checks(checks map[string]string) {
	var unknown []string
	for _, code := range slices.Sorted(maps.Keys(checks)) {
		if !checker.Known(checker.Code(code)) {
			unknown = append(unknown, strconv.Quote(code))
		}
		p.oneOfIn("checks: "+code, "checks", checks[code])
	}
	if len(unknown) > 0 {
		p.add("checks: unknown check code %s (known: %s)", strings.Join(unknown, ", "), knownCodes())
	}
}

// prefixes adds a problem for every element of list that is not a prefix.
func (p *problems) prefixes(key string, list []string) {
	for i, s := range list {
		if _, err := netip.ParsePrefix(s); err != nil {
			p.add("%s[%d]: %q is not a CIDR prefix such as 10.96.0.0/12 or fd00::/108", key, i, s)
		}
	}
}

// absPath adds a problem unless path is absolute, or empty when optional.
func (p *problems) absPath(key, path string, optional bool) {
	if (!optional || path != "") && !filepath.IsAbs(path) {
		p.add("%s: %q is not an absolute path", key, path)
	}
}

// quoteAll quotes each value and joins them with commas.
func quoteAll(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, ", ")
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

// config converts a valid, defaulted NetConf; problems has accepted every
// value it parses.
func (nc *NetConf) config() *Config {
	c := &Config{
		CNIVersion:    nc.CNIVersion,
		Name:          nc.Name,
		Mode:          nc.Mode,
		Options:       options(nc.Checks),
		ServiceCIDRs:  parsePrefixes(nc.ServiceCIDRs),
		ClusterCIDRs:  parsePrefixes(nc.ClusterCIDRs),
		FailurePolicy: nc.FailurePolicy,
		LogFile:       nc.LogFile,
		Kubeconfig:    nc.Kubeconfig,
		Events:        nc.Events == on,
		NodeName:      nc.NodeName,

		NodeStatus:     nc.NodeStatus == on,
		NodeStatusFile: nc.NodeStatusFile,
	}
	c.LogLevel, _ = logLevel(nc.LogLevel)                   // validated
	c.EventTimeout, _ = time.ParseDuration(nc.EventTimeout) // validated
	return c
}

// options turns the validated checks map into the checker's options.
func options(checks map[string]string) checker.Options {
	var o checker.Options
	for code, v := range checks {
		switch v {
		case checkOff:
			if o.Disabled == nil {
				o.Disabled = map[checker.Code]bool{}
			}
			o.Disabled[checker.Code(code)] = true
		case checkError, checkWarning:
			if o.Severity == nil {
				o.Severity = map[checker.Code]checker.Severity{}
			}
			o.Severity[checker.Code(code)] = checker.Severity(v)
		}
	}
	return o
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
