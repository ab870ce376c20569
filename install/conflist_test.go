package install

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// fgEntry is the entry an Entry{Mode: enforce} without options installs
// into a list that had no fibguard entry.
const fgEntry = `{"type":"fibguard","mode":"enforce","managedBy":"fibguard-install"}`

var enforce = Entry{Mode: ModeEnforce}

// taking returns the installed entry of enforce that took over hand-written
// entries: settings (`,"key":value...`, sorted) and what was cut, in the
// order of the cuts.
func taking(settings string, stash ...handEntry) string {
	b, err := json.Marshal(stash)
	if err != nil {
		panic(err)
	}
	return `{"type":"fibguard","mode":"enforce"` + settings + `,"managedBy":"fibguard-install","handWritten":` + string(b) + `}`
}

// TestConflistEdits covers the byte edits on their own: what is inserted
// where, what is taken over and put back, and that everything else stays.
// Removing the installer's entry always gives back the input's bytes,
// hand-written fibguard entries included.
func TestConflistEdits(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		installed string // after withEntry(enforce)
	}{
		{
			name:      "one line",
			in:        `{"name":"n","plugins":[{"type":"ptp"}]}`,
			installed: `{"name":"n","plugins":[{"type":"ptp"},` + fgEntry + `]}`,
		},
		{
			name:      "spaces after commas",
			in:        `{"name":"n","plugins":[ {"type":"ptp"}, {"type":"portmap"} ]}`,
			installed: `{"name":"n","plugins":[ {"type":"ptp"}, {"type":"portmap"}, ` + fgEntry + ` ]}`,
		},
		{
			name: "indented with tabs",
			in:   "{\n\t\"name\": \"n\",\n\t\"plugins\": [\n\t\t{\n\t\t\t\"type\": \"ptp\"\n\t\t}\n\t]\n}\n",
			installed: "{\n\t\"name\": \"n\",\n\t\"plugins\": [\n\t\t{\n\t\t\t\"type\": \"ptp\"\n\t\t},\n\t\t{\n\t\t\t\"type\": \"fibguard\",\n" +
				"\t\t\t\"mode\": \"enforce\",\n\t\t\t\"managedBy\": \"fibguard-install\"\n\t\t}\n\t]\n}\n",
		},
		{
			name:      "numbers, escapes, key order and unknown fields kept",
			in:        `{"z":1.0,"name":"n\u00e9","a":12345678901234567890123,"plugins":[{"type":"ptp","mtu":1.5e3,"x":"\"]}"}],"y":[null,true]}`,
			installed: `{"z":1.0,"name":"n\u00e9","a":12345678901234567890123,"plugins":[{"type":"ptp","mtu":1.5e3,"x":"\"]}"},` + fgEntry + `],"y":[null,true]}`,
		},
		{
			name:      "last plugins key wins, as in libcni",
			in:        `{"name":"n","plugins":[{"type":"a"}],"plugins":[{"type":"b"}]}`,
			installed: `{"name":"n","plugins":[{"type":"a"}],"plugins":[{"type":"b"},` + fgEntry + `]}`,
		},
		{
			name:      "a hand-written entry in the middle is taken over last, its settings kept",
			in:        `{"name":"n","plugins":[{"type":"ptp"},{"type":"fibguard","mode":"warn","logFile":"/l"},{"type":"portmap"}]}`,
			installed: `{"name":"n","plugins":[{"type":"ptp"},{"type":"portmap"},` + taking(`,"logFile":"/l"`, handEntry{At: 1, Text: `,{"type":"fibguard","mode":"warn","logFile":"/l"}`}) + `]}`,
		},
		{
			name:      "a hand-written entry first is taken over last",
			in:        `{"name":"n","plugins":[{"type":"fibguard"}, {"type":"ptp"}, {"type":"portmap"}]}`,
			installed: `{"name":"n","plugins":[{"type":"ptp"}, {"type":"portmap"}, ` + taking(``, handEntry{At: 0, Text: `{"type":"fibguard"}, `}) + `]}`,
		},
		{
			name:      "a hand-written entry last is taken over where it stands",
			in:        `{"name":"n","plugins":[{"type":"ptp"},{"type":"fibguard","mode":"warn"}]}`,
			installed: `{"name":"n","plugins":[{"type":"ptp"},` + taking(``, handEntry{At: 1, Text: `,{"type":"fibguard","mode":"warn"}`}) + `]}`,
		},
		{
			name: "several hand-written entries: one entry, the later settings win",
			in:   `{"name":"n","plugins":[{"type":"fibguard","logLevel":"debug","checks":{"FG003":"off"}},{"type":"fibguard","logLevel":"warn"},{"type":"ptp"},{"type":"fibguard","x":1}]}`,
			installed: `{"name":"n","plugins":[{"type":"ptp"},` + taking(`,"checks":{"FG003":"off"},"logLevel":"warn","x":1`,
				handEntry{At: 3, Text: `,{"type":"fibguard","x":1}`}, handEntry{At: 1, Text: `,{"type":"fibguard","logLevel":"warn"}`},
				handEntry{At: 0, Text: `{"type":"fibguard","logLevel":"debug","checks":{"FG003":"off"}},`}) + `]}`,
		},
		{
			// encoding/json matches "Type" to the type field, so libcni
			// sees a fibguard entry here, and so does the installer; it
			// matches "LogFile" to logFile too, so that is one setting.
			name:      "keys matched as libcni and the plugin match them",
			in:        `{"name":"n","plugins":[{"type":"ptp"},{"Type":"fibguard","LogFile":"/a","MODE":"warn"}]}`,
			installed: `{"name":"n","plugins":[{"type":"ptp"},` + taking(`,"LogFile":"/a"`, handEntry{At: 1, Text: `,{"Type":"fibguard","LogFile":"/a","MODE":"warn"}`}) + `]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConflist([]byte(tt.in))
			if err != nil {
				t.Fatalf("parseConflist: %v", err)
			}
			got, changed, err := c.withEntry(enforce)
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
			if again, changed, err := c2.withEntry(enforce); err != nil || changed || string(again) != string(got) {
				t.Errorf("second withEntry changed the document (%v, %v):\n%s", changed, err, again)
			}
			back, n, err := c2.withoutManaged()
			if err != nil || n != 1 {
				t.Fatalf("withoutManaged = %d, %v", n, err)
			}
			if string(back.b) != tt.in {
				t.Errorf("withoutManaged:\ngot  %s\nwant %s", back.b, tt.in)
			}
		})
	}
}

// TestConflistSettingsWin: the installer's configured settings win over a
// hand-written entry's, key by key and whatever their case; installing
// again with other settings starts again from the hand-written entry, and
// removing gives back the original bytes.
func TestConflistSettingsWin(t *testing.T) {
	in := `{"name":"n","plugins":[{"type":"fibguard","mode":"warn","logfile":"/hand","serviceCIDRs":["10.0.0.0/16"]},{"type":"ptp"}]}`
	cut := `{"type":"fibguard","mode":"warn","logfile":"/hand","serviceCIDRs":["10.0.0.0/16"]},`
	steps := []struct {
		opts string
		want string // the installed entry's settings
	}{
		{`{"logFile":"/cfg"}`, `,"logFile":"/cfg","serviceCIDRs":["10.0.0.0/16"]`},
		{`{"serviceCIDRS":["10.96.0.0/12"]}`, `,"logfile":"/hand","serviceCIDRS":["10.96.0.0/12"]`},
		{``, `,"logfile":"/hand","serviceCIDRs":["10.0.0.0/16"]`},
	}
	doc := []byte(in)
	for _, step := range steps {
		opts, err := ParseOptions(step.opts)
		if err != nil {
			t.Fatal(err)
		}
		c, err := parseConflist(doc)
		if err != nil {
			t.Fatal(err)
		}
		if doc, _, err = c.withEntry(Entry{Mode: ModeEnforce, Options: opts}); err != nil {
			t.Fatalf("options %s: %v", step.opts, err)
		}
		want := `{"name":"n","plugins":[{"type":"ptp"},` + taking(step.want, handEntry{At: 0, Text: cut}) + `]}`
		if string(doc) != want {
			t.Errorf("options %s:\ngot  %s\nwant %s", step.opts, doc, want)
		}
	}
	c, err := parseConflist(doc)
	if err != nil {
		t.Fatal(err)
	}
	back, _, err := c.withoutManaged()
	if err != nil || string(back.b) != in {
		t.Fatalf("withoutManaged = %s, %v; want the input", back.b, err)
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
		{name: "the installer's entry alone", in: `{"plugins":[` + fgEntry + `]}`, wantErr: "only plugin", remove: true},
		{name: "a kept entry that is not fibguard's", in: `{"plugins":[{"type":"ptp"},` + taking(``, handEntry{At: 0, Text: `{"type":"evil"},`}) + `]}`, wantErr: "not a fibguard entry that can be put back", remove: true},
		{name: "a kept entry that is the installer's", in: `{"plugins":[{"type":"ptp"},` + taking(``, handEntry{At: 0, Text: fgEntry + `,`}) + `]}`, wantErr: "not a fibguard entry that can be put back", remove: true},
		{name: "a kept entry that breaks the list", in: `{"plugins":[{"type":"ptp"},` + taking(``, handEntry{At: 1, Text: `]}`}) + `]}`, wantErr: "not a fibguard entry that can be put back"},
		{name: "two kept entries in one text", in: `{"plugins":[{"type":"ptp"},` + taking(``, handEntry{At: 1, Text: `,{"type":"fibguard"},{"type":"fibguard"}`}) + `]}`, wantErr: "not a fibguard entry that can be put back", remove: true},
		{name: "kept entries not a list", in: `{"plugins":[{"type":"ptp"},{"type":"fibguard","managedBy":"fibguard-install","handWritten":"x"}]}`, wantErr: "reading handWritten"},
		{name: "fibguard alone, installing", in: `{"plugins":[{"type":"fibguard","mode":"enforce"}]}`, wantErr: "no prevResult"},
		{name: "fibguard twice and nothing else", in: `{"plugins":[{"type":"fibguard"},{"type":"fibguard"}]}`, wantErr: "only plugin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConflist([]byte(tt.in))
			if err == nil {
				if tt.remove {
					_, _, err = c.withoutManaged()
				} else {
					_, _, err = c.withEntry(enforce)
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
// unchanged and in their order, wherever hand-written fibguard entries
// stood before (a list of nothing but fibguard is refused); and removing
// it gives back the input's bytes, those entries included. A document
// that already holds installer entries, edited in any way, is installed
// into or refused, never a panic.
func FuzzConflist(f *testing.F) {
	for _, s := range []string{
		`{"name":"n","plugins":[{"type":"ptp"}]}`,
		"{\n  \"plugins\": [\n    {\"type\": \"a\", \"x\": [1, {\"y\": \"]\"}]}\n  ]\n}",
		`{"plugins":[{"type":"a"}],"plugins":[{"type":"b"},{"type":"c"}]}`,
		`{"a":"\\\"","plugins":[ {"type":"\u0041"} , {"b":-1.5E+3} ]}`,
		`{"plugins":[{"type":"fibguard","mode":"warn"}, {"type":"bridge"}, {"type":"portmap"}]}`,
		"{\"plugins\":[\n  {\"type\":\"a\"},\n  {\"Type\":\"fibguard\"},\n  {\"type\":\"b\"}\n]}",
		`{"plugins":[{"type":"fibguard"}]}`,
		`{"plugins":[{"type":"fibguard","MODE":"warn","logfile":"/x","LogFile":"/y"},{"type":"a"}]}`,
		`{"plugins":[{"type":"a"},` + taking(``, handEntry{At: 0, Text: `{"type":"fibguard"},`}) + `]}`,
		// Invalid UTF-8 inside a string, which json.Valid accepts: kept as bytes.
		"{\"plugins\":[{\"type\":\"fibguard\",\"\":\"\",\"\xff\":\"\",\"\":\"\"},{\"\":\"\"}]}",
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
		if len(c.managed()) > 0 {
			// The installer's own entries (perhaps edited): undone first,
			// or refused with an error, never a panic.
			if out, _, err := c.withEntry(enforce); err == nil {
				if _, err := parseConflist(out); err != nil {
					t.Fatalf("installed document does not parse: %v\n%s", err, out)
				}
			}
			return
		}
		// The plugins that are not fibguard's, in their order.
		var others []json.RawMessage
		for i, e := range c.elems {
			if e.typ != PluginType {
				others = append(others, want[i])
			}
		}
		out, _, err := c.withEntry(enforce)
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
		var last struct{ Type, Mode, ManagedBy string }
		if err := json.Unmarshal(got[len(want)], &last); err != nil || last != (struct{ Type, Mode, ManagedBy string }{PluginType, ModeEnforce, managedValue}) {
			t.Fatalf("last plugin %s (%v), want the installer's entry", got[len(want)], err)
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
		back, _, err := c2.withoutManaged()
		if err != nil {
			t.Fatalf("withoutManaged: %v", err)
		}
		if string(back.b) != s {
			t.Fatalf("withoutManaged = %q; want the input %q", back.b, s)
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
