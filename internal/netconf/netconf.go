// Package netconf owns fibguard's entry in a CNI network configuration list
// (a conflist): its JSON fields, their defaults and their validation, the
// plugin's type name and its modes. The plugin reads its stdin with Parse;
// `fibguardctl check` and the node agent read the entry of a conflist the
// same way, with the fields the runtime inserts (cniVersion, name,
// prevResult) added, so that all three judge a pod by the same settings;
// the installer writes the entry with Type and a Mode.
//
// docs/plugin.md documents every field; TestDocumented holds that table to
// the code.
package netconf

import (
	"encoding/json"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/fibguard/fibguard/checker"
)

// Type is the "type" of fibguard's entry in a conflist, and so also the
// name of its binary in the CNI bin dir.
const Type = "fibguard"

// Mode is what ADD does with findings of severity error.
type Mode string

// Modes.
const (
	// ModeEnforce rejects the pod (the default).
	ModeEnforce Mode = "enforce"
	// ModeWarn only reports: ADD and CHECK never fail because of findings.
	ModeWarn Mode = "warn"
)

// Valid reports whether m is one of the modes.
func (m Mode) Valid() bool { return m == ModeEnforce || m == ModeWarn }

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
	// Event of a rejection.
	Kubeconfig   string `json:"kubeconfig"`
	Events       string `json:"events"`
	EventTimeout string `json:"eventTimeout"`
	NodeName     string `json:"nodeName"`

	// The node agent's verdict for STATUS (docs/agent.md).
	NodeStatus     string `json:"nodeStatus"`
	NodeStatusFile string `json:"nodeStatusFile"`
}

// Config is a validated configuration with its values parsed and defaults
// applied; only Parse makes one.
type Config struct {
	CNIVersion string
	Name       string
	// PrevResult is the result of the plugins before fibguard, in the
	// config's version, as the runtime gave it; nil when there is none.
	PrevResult types.Result
	// Result is PrevResult converted to the current result version, for
	// the checks; nil when there is no PrevResult.
	Result *current.Result
	// PassOn is the prevResult exactly as the runtime gave it, when that
	// is what an accepting ADD prints: it names the config's version, so
	// it needs no conversion. nil otherwise: PrevResult is then printed in
	// the config's version.
	PassOn json.RawMessage

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

// Parse turns the stdin of a plugin command into a Config, in a fixed
// order: decode every known field (collecting type errors), parse the
// prevResult, apply defaults, validate (collecting every problem). Its
// errors are *types.Error with the spec's codes: ErrDecodingFailure when
// stdin is not a JSON object or the prevResult cannot be decoded,
// ErrIncompatibleCNIVersion when the prevResult has another version than
// the config, ErrInvalidNetworkConfig listing every problem otherwise.
func Parse(stdin []byte) (*Config, error) {
	var nc NetConf
	problems, err := nc.decode(stdin)
	if err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "fibguard: "+err.Error(), "")
	}
	prev, res, passOn, err := parsePrevResult(nc.CNIVersion, nc.RawPrevResult)
	if err != nil {
		return nil, err
	}
	nc.setDefaults()
	// Every problem at once, so that one round of editing fixes them all.
	if problems = append(problems, nc.problems()...); len(problems) > 0 {
		return nil, types.NewError(types.ErrInvalidNetworkConfig,
			"fibguard: invalid configuration: "+strings.Join(problems, "; "), "")
	}
	c := nc.config()
	c.PrevResult, c.Result, c.PassOn = prev, res, passOn
	return c, nil
}
