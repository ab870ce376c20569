package netconf

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/types/create"

	"github.com/fibguard/fibguard/internal/netconf/internal/fastresult"
)

// parsePrevResult parses the prevResult in the config's version, as the
// CNI library does (version.ParsePrevResult: a prevResult without a
// cniVersion, or with an empty one, is read as the config's version), and
// converts it to the current version for the checks. A prevResult that
// names another version than the config's is refused with
// ErrIncompatibleCNIVersion: the runtime must hand over the previous
// plugin's result in the version it asked that plugin for.
//
// It also returns raw itself when raw is what an accepting ADD prints:
// a prevResult that names the config's own version needs no conversion,
// and passing it on as it came spares the encoding of a result on every
// ADD. nil when it must be printed from prev (no cniVersion in raw, or
// another version the library converts from).
func parsePrevResult(cniVersion string, raw json.RawMessage) (types.Result, *current.Result, json.RawMessage, error) {
	if jsonKind(raw) != "object" {
		return nil, nil, nil, nil // absent or null; decode refused other kinds
	}
	// Parsed first as it stands, the common case: the library reads the
	// object's own cniVersion and refuses an empty one, which is then
	// looked at apart (a second decode only for such prevResults).
	prev, err := create100(cniVersion, raw)
	asGiven := err == nil
	if err != nil {
		prev, err = parseUnversioned(cniVersion, raw, err)
		if err != nil {
			return nil, nil, nil, err
		}
	}
	res, err := current.NewResultFromResult(prev)
	if err != nil {
		return nil, nil, nil, types.NewError(types.ErrDecodingFailure,
			fmt.Sprintf("fibguard: convert prevResult from version %s: %v", cniVersion, err), "")
	}
	if err := passable(res); err != nil {
		return nil, nil, nil, types.NewError(types.ErrDecodingFailure, "fibguard: decode prevResult: "+err.Error(), "")
	}
	if asGiven && prev.Version() == cniVersion {
		return prev, res, raw, nil
	}
	return prev, res, nil, nil
}

// create100 is create.Create, through the accelerator fastresult where
// the library's parser for cniVersion is types100's: the plain results
// plugins print are read without encoding/json's reflection, whose set-up
// costs a fresh plugin process more than the rest of its configuration.
func create100(cniVersion string, raw json.RawMessage) (types.Result, error) {
	if cniVersion == "1.0.0" || cniVersion == "1.1.0" {
		if r, ok := fastresult.Decode(raw); ok {
			return r, nil
		}
	}
	return create.Create(cniVersion, raw)
}

// parseUnversioned handles a prevResult the library refused as it stood
// (createErr): one without a cniVersion, or with an empty one, is parsed
// again with the config's; any other refusal is an error, naming the
// versions when they differ.
func parseUnversioned(cniVersion string, raw json.RawMessage, createErr error) (types.Result, error) {
	var v struct {
		CNIVersion string `json:"cniVersion"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "fibguard: decode prevResult: "+err.Error(), "")
	}
	if v.CNIVersion == "" {
		versioned, err := withVersion(raw, cniVersion)
		if err != nil {
			return nil, types.NewError(types.ErrDecodingFailure, "fibguard: decode prevResult: "+err.Error(), "")
		}
		prev, err := create.Create(cniVersion, versioned)
		if err == nil {
			return prev, nil
		}
		createErr = err
	}
	if v.CNIVersion != "" && v.CNIVersion != cniVersion {
		return nil, types.NewError(types.ErrIncompatibleCNIVersion,
			fmt.Sprintf("fibguard: prevResult has cniVersion %q, the configuration %q", v.CNIVersion, cniVersion),
			createErr.Error())
	}
	return nil, types.NewError(types.ErrDecodingFailure, "fibguard: decode prevResult: could not parse prevResult: "+createErr.Error(), "")
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
