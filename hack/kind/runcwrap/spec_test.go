package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// all but CAP_SYS_RESOURCE (24), as on the project's CI machines.
const noSysResource = uint64(0x1fffeffffff)

func TestSpecFiles(t *testing.T) {
	tests := []struct {
		args []string
		want []specFile
	}{
		{[]string{"--root", "/r", "create", "--bundle", "/b", "--pid-file", "/p", "id"},
			[]specFile{{"/b/config.json", []string{"process", "capabilities"}}}},
		{[]string{"create", "-b=/b", "id"}, []specFile{{"/b/config.json", []string{"process", "capabilities"}}}},
		{[]string{"exec", "--process", "/tmp/p.json", "--detach", "id"}, []specFile{{"/tmp/p.json", []string{"capabilities"}}}},
		{[]string{"exec", "-p", "/tmp/p.json", "id"}, []specFile{{"/tmp/p.json", []string{"capabilities"}}}},
		{[]string{"delete", "--force", "id"}, nil},
		{[]string{"create", "--bundle"}, nil},
	}
	for _, tt := range tests {
		if got := specFiles(tt.args); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("specFiles(%q) = %v, want %v", tt.args, got, tt.want)
		}
	}
}

func TestFilterSpec(t *testing.T) {
	in := `{"ociVersion":"1.0.2","process":{"capabilities":{
		"bounding":["CAP_CHOWN","CAP_SYS_RESOURCE","CAP_NEW_ONE"],
		"effective":["CAP_SYS_RESOURCE"],"permitted":["CAP_SYS_ADMIN","CAP_SYS_RESOURCE"]}},
		"linux":{"seccomp":{"syscalls":[{"args":[{"value":18446744073709551615}]}]}},"x-unknown":{"a":1}}`
	out, changed, err := filterSpec([]byte(in), []string{"process", "capabilities"}, noSysResource)
	if err != nil || !changed {
		t.Fatalf("filterSpec: changed=%v err=%v", changed, err)
	}
	var got map[string]any
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	caps := lookup(t, got, "process", "capabilities")
	want := map[string]any{
		"bounding":  []any{"CAP_CHOWN", "CAP_NEW_ONE"},
		"effective": []any{},
		"permitted": []any{"CAP_SYS_ADMIN"},
	}
	if !reflect.DeepEqual(caps, any(want)) {
		t.Errorf("capabilities = %v, want %v", caps, want)
	}
	v := lookup(t, got, "linux", "seccomp", "syscalls", 0, "args", 0, "value")
	if v != json.Number("18446744073709551615") {
		t.Errorf("a 64-bit seccomp value became %v", v)
	}
	if _, ok := got["x-unknown"]; !ok {
		t.Error("an unknown field was dropped")
	}
}

func TestFilterSpecUnchanged(t *testing.T) {
	in := []byte(`{"capabilities":{"bounding":["CAP_CHOWN"]},"args":["sh"]}`)
	out, changed, err := filterSpec(in, []string{"capabilities"}, noSysResource)
	if err != nil || changed || string(out) != string(in) {
		t.Errorf("filterSpec = %s, %v, %v; want the input unchanged", out, changed, err)
	}
	full := []byte(`{"capabilities":{"bounding":["CAP_SYS_RESOURCE"]}}`)
	if _, changed, _ := filterSpec(full, []string{"capabilities"}, ^uint64(0)); changed {
		t.Error("a complete bounding set changed the spec")
	}
}

func TestFilterFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "process.json")
	if err := os.WriteFile(path, []byte(`{"capabilities":{"ambient":["CAP_SYS_RESOURCE","CAP_KILL"]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := filterFile(path, []string{"capabilities"}, noSysResource); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"capabilities":{"ambient":["CAP_KILL"]}}`; string(data) != want {
		t.Errorf("file = %s, want %s", data, want)
	}
}

func TestReadBoundingSet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status")
	if err := os.WriteFile(path, []byte("Name:\tx\nCapBnd:\t000001fffeffffff\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readBoundingSet(path)
	if err != nil || got != noSysResource {
		t.Errorf("readBoundingSet = %x, %v; want %x", got, err, noSysResource)
	}
}

// lookup follows path (object keys and list indexes) through a decoded JSON
// document, failing the test where the document does not have that shape.
func lookup(t *testing.T, doc any, path ...any) any {
	t.Helper()
	for _, step := range path {
		switch s := step.(type) {
		case string:
			m, ok := doc.(map[string]any)
			if !ok {
				t.Fatalf("%v: not an object at %q", doc, s)
			}
			doc = m[s]
		case int:
			l, ok := doc.([]any)
			if !ok || s >= len(l) {
				t.Fatalf("%v: no list element %d", doc, s)
			}
			doc = l[s]
		}
	}
	return doc
}
