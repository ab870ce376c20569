package netconf

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docRow is a row of the configuration table in docs/plugin.md.
type docRow struct {
	typ, def string
}

// configTable reads the table of docs/plugin.md's "## Configuration"
// section, by field: a row naming several fields ("`cniVersion`, `name`")
// stands for each.
func configTable(t *testing.T) map[string]docRow {
	t.Helper()
	doc, err := os.ReadFile("../../docs/plugin.md")
	if err != nil {
		t.Fatalf("read docs: %v", err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Configuration\n")
	if !ok {
		t.Fatal("docs/plugin.md: no section ## Configuration")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	name := regexp.MustCompile("`([A-Za-z]+)`")
	rows := map[string]docRow{}
	for line := range strings.SplitSeq(section, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		// Cells are split at the pipes that are not escaped (\|).
		cells := strings.Split(strings.ReplaceAll(line, `\|`, "\x00"), "|")
		if len(cells) != 6 {
			t.Fatalf("docs/plugin.md: a row of %d cells, want 4: %s", len(cells)-2, line)
		}
		row := docRow{typ: strings.TrimSpace(cells[2]), def: strings.TrimSpace(cells[3])}
		for _, m := range name.FindAllStringSubmatch(cells[1], -1) {
			rows[m[1]] = row
		}
	}
	return rows
}

// TestDocumented compares the configuration table of docs/plugin.md with
// NetConf, as checker's TestCatalog compares docs/checks.md with the
// checks: the same fields, each field's default as setDefaults fills it
// (and none claimed for a field it leaves empty), and for each field that
// takes one of a few values, those values.
func TestDocumented(t *testing.T) {
	rows := configTable(t)
	var nc NetConf
	nc.setDefaults()
	v := reflect.ValueOf(nc)
	var tags []string
	for _, f := range reflect.VisibleFields(v.Type()) {
		key := jsonKey(f)
		tags = append(tags, key)
		row, ok := rows[key]
		if !ok {
			t.Errorf("docs/plugin.md: no row for %q", key)
			continue
		}
		checkDefault(t, key, row.def, v.FieldByIndex(f.Index))
		if want, ok := allowed[key]; ok {
			if got := quotedValues(row.typ); !slices.Equal(got, want) {
				t.Errorf("docs/plugin.md, %s: values %q, the code allows %q", key, got, want)
			}
		}
	}
	for key := range rows {
		if !slices.Contains(tags, key) {
			t.Errorf("docs/plugin.md documents %q, which NetConf does not have", key)
		}
	}
}

// checkDefault compares a field's documented default with its value after
// setDefaults.
func checkDefault(t *testing.T, key, doc string, v reflect.Value) {
	t.Helper()
	if v.IsZero() {
		if strings.HasPrefix(doc, "`\"") {
			t.Errorf("docs/plugin.md, %s: default %s, but the code sets none", key, doc)
		}
		return
	}
	b, err := json.Marshal(v.Interface())
	if err != nil {
		t.Fatal(err)
	}
	if want := "`" + string(b) + "`"; doc != want {
		t.Errorf("docs/plugin.md, %s: default %s, the code's %s", key, doc, want)
	}
}

// quotedValues returns the values a docs cell lists as `"value"`.
func quotedValues(cell string) []string {
	var out []string
	for _, m := range regexp.MustCompile("`\"([^\"`]*)\"`").FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

func jsonKey(f reflect.StructField) string {
	key, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return key
}

// TestFieldsAreTags: decode reads every field of NetConf, under its tag.
func TestFieldsAreTags(t *testing.T) {
	var nc NetConf
	v := reflect.ValueOf(&nc).Elem()
	fields := nc.fields()
	vf := reflect.VisibleFields(v.Type())
	if len(fields) != len(vf) {
		t.Fatalf("decode reads %d fields, NetConf has %d", len(fields), len(vf))
	}
	for i, f := range vf {
		if fields[i].key != jsonKey(f) || fields[i].dst != v.FieldByIndex(f.Index).Addr().Interface() {
			t.Errorf("field %d: decode reads %q into another field than %s (tag %q)", i, fields[i].key, f.Name, jsonKey(f))
		}
	}
}

// TestAllowedKeys: every field with a list of allowed values exists.
func TestAllowedKeys(t *testing.T) {
	var tags []string
	for _, f := range reflect.VisibleFields(reflect.TypeFor[NetConf]()) {
		tags = append(tags, jsonKey(f))
	}
	for key := range allowed {
		if !slices.Contains(tags, key) {
			t.Errorf("allowed values for %q, which NetConf does not have", key)
		}
	}
}

func TestModeValid(t *testing.T) {
	for m, want := range map[Mode]bool{ModeEnforce: true, ModeWarn: true, "": false, "Enforce": false, "audit": false} {
		if got := m.Valid(); got != want {
			t.Errorf("Mode(%q).Valid() = %v, want %v", m, got, want)
		}
	}
}
