package install

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// PluginType is the "type" of fibguard's entry in a conflist, and so also
// the name of its binary in the CNI bin dir.
const PluginType = "fibguard"

// Modes of the plugin, as docs/plugin.md describes them.
const (
	ModeEnforce = "enforce"
	ModeWarn    = "warn"
)

// reservedKeys are set by the runtime or by Entry itself, never by options:
// "type" and "mode" by Entry, "cniVersion" and "name" by the runtime from the
// conflist, "prevResult" and "runtimeConfig" by the runtime at each call.
var reservedKeys = []string{"type", "mode", "cniVersion", "name", "prevResult", "runtimeConfig"}

// Entry is fibguard's element of a conflist's "plugins" array.
type Entry struct {
	// Mode is "enforce" or "warn".
	Mode string
	// Options are the other fields of the entry ("serviceCIDRs", "checks",
	// "kubeconfig"...), by key, as JSON. They are written as given; the
	// plugin validates them.
	Options map[string]json.RawMessage
}

// Validate reports every problem of e at once.
func (e Entry) Validate() error {
	var errs []error
	if e.Mode != ModeEnforce && e.Mode != ModeWarn {
		errs = append(errs, fmt.Errorf("mode %q: want %q or %q", e.Mode, ModeEnforce, ModeWarn))
	}
	for _, k := range slices.Sorted(maps.Keys(e.Options)) {
		if slices.Contains(reservedKeys, k) {
			errs = append(errs, fmt.Errorf("option %q: set by the installer or the runtime, not an option", k))
			continue
		}
		if !json.Valid(e.Options[k]) {
			errs = append(errs, fmt.Errorf("option %q: not valid JSON: %q", k, e.Options[k]))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid fibguard entry: %w", err)
	}
	return nil
}

// ParseOptions reads options given as one JSON object, such as
// `{"serviceCIDRs": ["10.96.0.0/12"]}`. An empty string means no options.
func ParseOptions(s string) (map[string]json.RawMessage, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var opts map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &opts); err != nil {
		return nil, fmt.Errorf("options must be a JSON object: %w", err)
	}
	if opts == nil {
		return nil, errors.New("options must be a JSON object, not null")
	}
	return opts, nil
}

// json renders the entry compactly, with its keys in a fixed order: "type",
// "mode", then the options sorted by key. The same entry always gives the
// same bytes.
func (e Entry) json() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(`{"type":"` + PluginType + `","mode":`)
	mode, err := json.Marshal(e.Mode)
	if err != nil {
		return nil, fmt.Errorf("encoding mode: %w", err)
	}
	b.Write(mode)
	for _, k := range slices.Sorted(maps.Keys(e.Options)) {
		key, err := json.Marshal(k)
		if err != nil {
			return nil, fmt.Errorf("encoding option key %q: %w", k, err)
		}
		b.WriteByte(',')
		b.Write(key)
		b.WriteByte(':')
		if err := json.Compact(&b, e.Options[k]); err != nil {
			return nil, fmt.Errorf("option %q: %w", k, err)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// sameJSON reports whether a and b are the same JSON value: equal after
// decoding, with numbers compared as written (1.0 and 1 differ), so that
// re-indenting a file does not count as a change.
func sameJSON(a, b []byte) bool {
	va, errA := decodeNumbers(a)
	vb, errB := decodeNumbers(b)
	return errA == nil && errB == nil && reflect.DeepEqual(va, vb)
}

func decodeNumbers(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("decoding JSON: %w", err)
	}
	return v, nil
}
