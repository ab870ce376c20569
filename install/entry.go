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
	"unicode/utf8"

	"github.com/fibguard/fibguard/internal/netconf"
)

// The plugin's type in a conflist — and so also the name of its binary in
// the CNI bin dir — and its modes, as package netconf defines them.
const (
	PluginType  = netconf.Type
	ModeEnforce = string(netconf.ModeEnforce)
	ModeWarn    = string(netconf.ModeWarn)
)

// The installer's own keys in the entry it writes. managedBy marks the
// entry as the installer's: one without it was written by someone else (by
// hand, or by a tool that renders the primary's conflist), and the
// installer takes it out only to put it back, byte for byte, on uninstall.
// handWritten holds those entries until then. The plugin ignores both
// keys, as it ignores every key it does not know.
const (
	managedKey   = "managedBy"
	managedValue = "fibguard-install"
	handKey      = "handWritten"
)

// reservedKeys are set by the runtime or by Entry itself, never by options:
// "type" and "mode" by Entry, "cniVersion" and "name" by the runtime from the
// conflist, "prevResult" and "runtimeConfig" by the runtime at each call,
// managedKey and handKey by the installer. They are matched as the plugin's
// decoder (encoding/json) matches keys: without regard to case.
var reservedKeys = []string{"type", "mode", "cniVersion", "name", "prevResult", "runtimeConfig", managedKey, handKey}

// reserved reports whether key is one of reservedKeys, in any case.
func reserved(key string) bool {
	return slices.ContainsFunc(reservedKeys, func(r string) bool { return strings.EqualFold(r, key) })
}

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
	if !netconf.Mode(e.Mode).Valid() {
		errs = append(errs, fmt.Errorf("mode %q: want %q or %q", e.Mode, netconf.ModeEnforce, netconf.ModeWarn))
	}
	for _, k := range slices.Sorted(maps.Keys(e.Options)) {
		if reserved(k) {
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

// json renders the entry as the installer writes it into a list that had
// no fibguard entry of someone else's (see installed).
func (e Entry) json() ([]byte, error) { return e.installed(nil, nil) }

// handEntry is a fibguard entry someone else wrote, as the installer took it
// out of the list: its index then, and the exact bytes it cut (the entry
// with the separator before it, or after it for the first plugin), so that
// uninstall puts back the very same bytes.
type handEntry struct {
	At   int    `json:"at"`
	Text string `json:"text,omitempty"`
	// Bytes holds the cut instead of Text when it is not valid UTF-8
	// (which JSON strings cannot carry, and json.Valid lets through inside
	// strings): base64, so that every byte comes back.
	Bytes []byte `json:"bytes,omitempty"`
}

// newHandEntry records the cut text taken out at index at.
func newHandEntry(at int, text []byte) handEntry {
	if utf8.Valid(text) {
		return handEntry{At: at, Text: string(text)}
	}
	return handEntry{At: at, Bytes: bytes.Clone(text)}
}

// text is the cut, as it was.
func (h handEntry) text() string {
	if h.Bytes != nil {
		return string(h.Bytes)
	}
	return h.Text
}

// installed renders the entry the installer writes, compactly, with its keys
// in a fixed order: "type", "mode", the settings sorted by key, managedKey,
// then handKey when stash is not empty. The settings are those of the
// hand-written entries it replaces (hand, in list order: a later one wins,
// as encoding/json lets a later key win), overridden key by key by e's
// options: what the installer is configured with wins, and a setting it
// does not speak of is kept. The same input always gives the same bytes.
func (e Entry) installed(hand [][]byte, stash []handEntry) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	opts, err := mergedOptions(hand, e.Options)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(`{"type":"` + PluginType + `","mode":`)
	mode, err := json.Marshal(e.Mode)
	if err != nil {
		return nil, fmt.Errorf("encoding mode: %w", err)
	}
	b.Write(mode)
	for _, o := range opts {
		b.WriteByte(',')
		if err := writeMember(&b, o.key, o.value); err != nil {
			return nil, err
		}
	}
	b.WriteString(`,"` + managedKey + `":"` + managedValue + `"`)
	if len(stash) > 0 {
		s, err := json.Marshal(stash)
		if err != nil {
			return nil, fmt.Errorf("encoding the hand-written entries: %w", err)
		}
		b.WriteString(`,"` + handKey + `":`)
		b.Write(s)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// member is one key and value of a JSON object.
type member struct {
	key   string
	value json.RawMessage
	// at is where value lies in the object's bytes.
	at span
}

// mergedOptions returns the settings of the hand-written entries hand,
// overridden by opts, sorted by key. Keys are merged as the plugin's
// decoder matches them, without regard to case, so that no two keys of
// the result stand for the same setting; reserved keys are left out.
func mergedOptions(hand [][]byte, opts map[string]json.RawMessage) ([]member, error) {
	byFold := map[string]member{}
	for i, h := range hand {
		ms, err := objectMembers(h)
		if err != nil {
			return nil, fmt.Errorf("hand-written fibguard entry %d: %w", i+1, err)
		}
		for _, m := range ms {
			if !reserved(m.key) {
				byFold[strings.ToLower(m.key)] = m
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		byFold[strings.ToLower(k)] = member{key: k, value: opts[k]}
	}
	out := slices.Collect(maps.Values(byFold))
	slices.SortFunc(out, func(a, b member) int { return strings.Compare(a.key, b.key) })
	return out, nil
}

// objectMembers returns the members of the JSON object b in their order,
// duplicates included.
func objectMembers(b []byte) ([]member, error) {
	if !json.Valid(b) {
		return nil, errors.New("not valid JSON")
	}
	i := skipSpace(b, 0)
	if b[i] != '{' {
		return nil, errors.New("not a JSON object")
	}
	var out []member
	for i = skipSpace(b, i+1); b[i] != '}'; {
		keyEnd := valueEnd(b, i)
		var key string
		if err := json.Unmarshal(b[i:keyEnd], &key); err != nil {
			return nil, fmt.Errorf("decoding key at byte %d: %w", i, err)
		}
		i = skipSpace(b, skipSpace(b, keyEnd)+1) // past the ':'
		end := valueEnd(b, i)
		out = append(out, member{key, json.RawMessage(b[i:end]), span{i, end}})
		if i = skipSpace(b, end); b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return out, nil
}

// writeMember writes "key":value, the value compacted.
func writeMember(b *bytes.Buffer, key string, value json.RawMessage) error {
	k, err := json.Marshal(key)
	if err != nil {
		return fmt.Errorf("encoding option key %q: %w", key, err)
	}
	b.Write(k)
	b.WriteByte(':')
	if err := json.Compact(b, value); err != nil {
		return fmt.Errorf("option %q: %w", key, err)
	}
	return nil
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
