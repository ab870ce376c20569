package netconf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

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
	var problems []string
	if v, ok := raw["prevResult"]; ok {
		if kind := jsonKind(v); kind != "object" && kind != "null" {
			problems = append(problems, fmt.Sprintf("prevResult: got a JSON %s, want an object", kind))
			delete(raw, "prevResult")
		}
	}
	for _, f := range nc.fields() {
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

// field is a JSON key of the entry and where decode puts its value.
type field struct {
	key string
	dst any
}

// fields lists nc's fields by their JSON keys, which are also their tags
// (TestFieldsAreTags).
func (nc *NetConf) fields() []field {
	return []field{
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
