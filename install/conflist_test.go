package install

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

const fgEntry = `{"type":"fibguard","mode":"enforce"}`

// TestConflistEdits covers the byte edits on their own: what is inserted
// where, what is replaced and removed, and that everything else stays.
func TestConflistEdits(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		installed string // after withEntry(fgEntry)
		removed   string // after withoutEntries on installed; "" means in
	}{
		{
			name:      "one line",
			in:        `{"name":"n","plugins":[{"type":"ptp"}]}`,
			installed: `{"name":"n","plugins":[{"type":"ptp"},{"type":"fibguard","mode":"enforce"}]}`,
		},
		{
			name:      "spaces after commas",
			in:        `{"name":"n","plugins":[ {"type":"ptp"}, {"type":"portmap"} ]}`,
			installed: `{"name":"n","plugins":[ {"type":"ptp"}, {"type":"portmap"}, {"type":"fibguard","mode":"enforce"} ]}`,
		},
		{
			name:      "indented with tabs",
			in:        "{\n\t\"name\": \"n\",\n\t\"plugins\": [\n\t\t{\n\t\t\t\"type\": \"ptp\"\n\t\t}\n\t]\n}\n",
			installed: "{\n\t\"name\": \"n\",\n\t\"plugins\": [\n\t\t{\n\t\t\t\"type\": \"ptp\"\n\t\t},\n\t\t{\n\t\t\t\"type\": \"fibguard\",\n\t\t\t\"mode\": \"enforce\"\n\t\t}\n\t]\n}\n",
		},
		{
			name:      "numbers, escapes, key order and unknown fields kept",
			in:        `{"z":1.0,"name":"n\u00e9","a":12345678901234567890123,"plugins":[{"type":"ptp","mtu":1.5e3,"x":"\"]}"}],"y":[null,true]}`,
			installed: `{"z":1.0,"name":"n\u00e9","a":12345678901234567890123,"plugins":[{"type":"ptp","mtu":1.5e3,"x":"\"]}"},{"type":"fibguard","mode":"enforce"}],"y":[null,true]}`,
		},
		{
			name:      "last plugins key wins, as in libcni",
			in:        `{"name":"n","plugins":[{"type":"a"}],"plugins":[{"type":"b"}]}`,
			installed: `{"name":"n","plugins":[{"type":"a"}],"plugins":[{"type":"b"},{"type":"fibguard","mode":"enforce"}]}`,
		},
		{
			name:      "an entry in the middle moves to the end",
			in:        `{"name":"n","plugins":[{"type":"ptp"},{"type":"fibguard","mode":"warn"},{"type":"portmap"}]}`,
			installed: `{"name":"n","plugins":[{"type":"ptp"},{"type":"portmap"},{"type":"fibguard","mode":"enforce"}]}`,
			removed:   `{"name":"n","plugins":[{"type":"ptp"},{"type":"portmap"}]}`,
		},
		{
			name:      "an entry first moves to the end",
			in:        `{"name":"n","plugins":[{"type":"fibguard"}, {"type":"ptp"}, {"type":"portmap"}]}`,
			installed: `{"name":"n","plugins":[{"type":"ptp"}, {"type":"portmap"}, {"type":"fibguard","mode":"enforce"}]}`,
			removed:   `{"name":"n","plugins":[{"type":"ptp"}, {"type":"portmap"}]}`,
		},
		{
			name:      "an entry last with other settings is replaced",
			in:        `{"name":"n","plugins":[{"type":"ptp"},{"type":"fibguard","mode":"warn"}]}`,
			installed: `{"name":"n","plugins":[{"type":"ptp"},{"type":"fibguard","mode":"enforce"}]}`,
			removed:   `{"name":"n","plugins":[{"type":"ptp"}]}`,
		},
		{
			name:      "duplicate entries collapse to one, last",
			in:        `{"name":"n","plugins":[{"type":"fibguard"},{"type":"fibguard"},{"type":"ptp"},{"type":"fibguard"}]}`,
			installed: `{"name":"n","plugins":[{"type":"ptp"},{"type":"fibguard","mode":"enforce"}]}`,
			removed:   `{"name":"n","plugins":[{"type":"ptp"}]}`,
		},
		{
			// encoding/json matches "Type" to the type field, so libcni
			// sees a fibguard entry here, and so does the installer.
			name:      "type matched as libcni matches it",
			in:        `{"name":"n","plugins":[{"type":"ptp"},{"Type":"fibguard"}]}`,
			installed: `{"name":"n","plugins":[{"type":"ptp"},{"type":"fibguard","mode":"enforce"}]}`,
			removed:   `{"name":"n","plugins":[{"type":"ptp"}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConflist([]byte(tt.in))
			if err != nil {
				t.Fatalf("parseConflist: %v", err)
			}
			got, changed, err := c.withEntry([]byte(fgEntry))
			if err != nil || !changed {
				t.Fatalf("withEntry = changed %v, %v", changed, err)
			}
			if string(got) != tt.installed {
				t.Errorf("withEntry:\ngot  %s\nwant %s", got, tt.installed)
			}
			c2, err := parseConflist(got)
			if err != nil {
				t.Fatalf("parseConflist(installed): %v", err)
			}
			if again, changed, err := c2.withEntry([]byte(fgEntry)); err != nil || changed || string(again) != string(got) {
				t.Errorf("second withEntry changed the document (%v, %v):\n%s", changed, err, again)
			}
			back, n, err := c2.withoutEntries()
			if err != nil || n != 1 {
				t.Fatalf("withoutEntries = %d, %v", n, err)
			}
			want := tt.removed
			if want == "" {
				want = tt.in
			}
			if string(back) != want {
				t.Errorf("withoutEntries:\ngot  %s\nwant %s", back, want)
			}
		})
	}
}

func TestConflistRefusals(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
		remove            bool
	}{
		{name: "not JSON", in: `{"plugins":[`, wantErr: "not valid JSON"},
		{name: "not an object", in: `[{"type":"ptp"}]`, wantErr: "not a JSON object"},
		{name: "no plugins", in: `{"name":"n"}`, wantErr: "no inline"},
		{name: "plugins not a list", in: `{"plugins":{"type":"ptp"}}`, wantErr: "not an array"},
		{name: "plugin not an object", in: `{"plugins":["ptp"]}`, wantErr: "plugin 0"},
		{name: "empty plugins", in: `{"plugins":[]}`, wantErr: "is empty"},
		{name: "fibguard alone", in: `{"plugins":[{"type":"fibguard"}]}`, wantErr: "only plugin", remove: true},
		{name: "fibguard alone, installing", in: `{"plugins":[{"type":"fibguard","mode":"enforce"}]}`, wantErr: "no prevResult"},
		{name: "fibguard twice and nothing else", in: `{"plugins":[{"type":"fibguard"},{"type":"fibguard"}]}`, wantErr: "only plugin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConflist([]byte(tt.in))
			if err == nil {
				if tt.remove {
					_, _, err = c.withoutEntries()
				} else {
					_, _, err = c.withEntry([]byte(fgEntry))
				}
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// FuzzConflist checks the byte scanner against encoding/json: whatever
// document parses, its plugins are the elements encoding/json decodes; an
// installed entry decodes as the last plugin, after the other plugins,
// unchanged and in their order, wherever fibguard's entries stood before
// (a list of nothing but fibguard is refused); and removing it gives back
// the input's bytes when the input had no entry of fibguard's.
func FuzzConflist(f *testing.F) {
	for _, s := range []string{
		`{"name":"n","plugins":[{"type":"ptp"}]}`,
		"{\n  \"plugins\": [\n    {\"type\": \"a\", \"x\": [1, {\"y\": \"]\"}]}\n  ]\n}",
		`{"plugins":[{"type":"a"}],"plugins":[{"type":"b"},{"type":"c"}]}`,
		`{"a":"\\\"","plugins":[ {"type":"\u0041"} , {"b":-1.5E+3} ]}`,
		`{"plugins":[{"type":"fibguard","mode":"warn"}, {"type":"bridge"}, {"type":"portmap"}]}`,
		"{\"plugins\":[\n  {\"type\":\"a\"},\n  {\"Type\":\"fibguard\"},\n  {\"type\":\"b\"}\n]}",
		`{"plugins":[{"type":"fibguard"}]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseConflist([]byte(s))
		if err != nil {
			return
		}
		var doc map[string]json.RawMessage
		if err := json.Unmarshal([]byte(s), &doc); err != nil {
			t.Fatalf("parsed, but encoding/json refuses it: %v", err)
		}
		var want []json.RawMessage
		if err := json.Unmarshal(doc["plugins"], &want); err != nil {
			t.Fatalf("plugins do not decode as a list: %v", err)
		}
		if len(want) != len(c.elems) {
			t.Fatalf("%d elements, encoding/json has %d", len(c.elems), len(want))
		}
		for i := range want {
			if !sameJSON(c.elem(i), want[i]) {
				t.Fatalf("element %d = %s, encoding/json has %s", i, c.elem(i), want[i])
			}
		}
		if len(c.elems) == 0 {
			return
		}
		had := len(c.ours()) > 0
		// The plugins that are not fibguard's, in their order.
		var others []json.RawMessage
		for i, e := range c.elems {
			if e.typ != PluginType {
				others = append(others, want[i])
			}
		}
		out, _, err := c.withEntry([]byte(fgEntry))
		if len(others) == 0 {
			if !errors.Is(err, errOnlyFibguard) {
				t.Fatalf("withEntry on a list of fibguard alone: %v, want errOnlyFibguard", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("withEntry: %v", err)
		}
		want = others
		var after map[string]json.RawMessage
		if err := json.Unmarshal(out, &after); err != nil {
			t.Fatalf("installed document is not JSON: %v\n%s", err, out)
		}
		var got []json.RawMessage
		if err := json.Unmarshal(after["plugins"], &got); err != nil || len(got) != len(want)+1 {
			t.Fatalf("installed plugins %s (%v), want %d", after["plugins"], err, len(want)+1)
		}
		for i := range want {
			if !sameJSON(got[i], want[i]) {
				t.Fatalf("plugin %d changed: %s, was %s", i, got[i], want[i])
			}
		}
		if !sameJSON(got[len(want)], []byte(fgEntry)) {
			t.Fatalf("last plugin %s, want fibguard's entry", got[len(want)])
		}
		delete(after, "plugins")
		delete(doc, "plugins")
		if !reflect.DeepEqual(normalize(t, after), normalize(t, doc)) {
			t.Fatalf("other keys changed:\n%s\nwas\n%s", out, s)
		}
		c2, err := parseConflist(out)
		if err != nil {
			t.Fatalf("parseConflist(installed): %v", err)
		}
		back, _, err := c2.withoutEntries()
		if err != nil {
			t.Fatalf("withoutEntries: %v", err)
		}
		if !had && string(back) != s {
			t.Fatalf("withoutEntries = %q; want the input %q", back, s)
		}
	})
}

func normalize(t *testing.T, m map[string]json.RawMessage) map[string]any {
	t.Helper()
	out := map[string]any{}
	for k, v := range m {
		d, err := decodeNumbers(v)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = d
	}
	return out
}
