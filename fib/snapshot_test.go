package fib

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestSnapshotRoundTrip(t *testing.T) {
	m, _ := benchModel(V4, 500)
	m.Conf = map[string]DevConf{"eth0": {RouteLocalnet: true}, ConfAll: {RPFilter: 2}}
	m.Unmerged = true
	var buf bytes.Buffer
	if err := m.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	got.idx, m.idx = nil, nil
	if !reflect.DeepEqual(got, m) {
		t.Errorf("snapshot round trip changed the model")
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"not json", "{", "decode snapshot"},
		{"no version", `{"links":[]}`, "version"},
		{"other version", `{"version":"fibguard.snapshot/v0"}`, "version"},
		{"unknown field", `{"version":"fibguard.snapshot/v1","colour":1}`, "unknown field"},
		{"bad route", `{"version":"fibguard.snapshot/v1","routes":["unicast 10.0.0.0/8 table main"]}`, "route 0"},
		{"unknown device", `{"version":"fibguard.snapshot/v1","routes":["unicast 10.0.0.0/8 dev eth9 table main scope link"]}`, "unknown device"},
		{"bad address", `{"version":"fibguard.snapshot/v1","links":[{"index":1,"name":"lo","kind":"loopback"}],"addrs":[{"prefix":"10.0.0.300/8","link":"lo"}]}`, "decode snapshot"},
		{"bad rule action", `{"version":"fibguard.snapshot/v1","rules":[{"family":"inet","priority":1,"action":"jump"}]}`, "unknown rule action"},
		{"bad link kind", `{"version":"fibguard.snapshot/v1","links":[{"index":1,"name":"x","kind":"tunnel"}]}`, "unknown kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Decode(%s) = %v, want an error containing %q", tt.in, err, tt.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	var buf bytes.Buffer
	m, _ := benchModel(V6, 5)
	if err := m.Encode(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"version":"fibguard.snapshot/v1","links":[{"index":1,"name":"lo","kind":"loopback","up":true}],"routes":["local 127.0.0.0/8 dev lo table local scope host"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(bytes.NewReader(b))
		if err != nil {
			return
		}
		// A model that decodes must answer lookups without panicking and
		// survive another round trip.
		for _, r := range m.Routes {
			if _, err := m.Lookup(Query{Dst: r.Dst.Addr()}); err != nil {
				t.Fatal(err)
			}
		}
		var out bytes.Buffer
		if err := m.Encode(&out); err != nil {
			t.Fatal(err)
		}
		if _, err := Decode(&out); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
	})
}
