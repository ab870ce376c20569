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
	if _, _, ok := routesValue(buf.Bytes()); !ok {
		t.Error("Decode does not find the routes of an encoded snapshot")
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
		{"routes not a list", `{"version":"fibguard.snapshot/v1","routes":{"a":1}}`, "not an array of strings"},
		{"route not a string", `{"version":"fibguard.snapshot/v1","routes":["unicast 10.0.0.0/8 table main scope link", 5]}`, "element 1 is not a string"},
		{"nested list", `{"version":"fibguard.snapshot/v1","routes":[["x"]]}`, "element 0 is not a string"},
		{"bad escaped route", `{"version":"fibguard.snapshot/v1","routes":["blackhole 10.0.0.0/8 table main scope link","unicast 10.0.0.0/8 table \u006dain scope nowhere x"]}`, "route 1"},
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

// TestDecodeRouteStrings checks that route lines are read as JSON strings:
// escapes, spacing, an empty list, null.
func TestDecodeRouteStrings(t *testing.T) {
	const head = `{"version":"fibguard.snapshot/v1","links":[{"index":1,"name":"lo","kind":"loopback"},{"index":2,"name":"e\"0","kind":"other"}],"routes":`
	tests := []struct {
		routes string
		want   []string
	}{
		{`null`, nil},
		{` [ ] `, nil},
		{`["unicast 10.0.0.0/8 dev \u0065\"0 table main scope link"]`, []string{"unicast 10.0.0.0/8 dev e\"0 table main scope link"}},
		{`["blackhole 10.0.0.0/8 table main scope link"],"unmerged":true`, []string{"blackhole 10.0.0.0/8 table main scope link"}},
		{`["blackhole 10.0.0.0/8 table main scope link"],"ROUTES":["blackhole 10.1.0.0/16 table main scope link"],"conf":{"all":{"rpFilter":1}}`, []string{"blackhole 10.1.0.0/16 table main scope link"}},
		{`["blackhole 10.0.0.0/8 table main scope link"],"rules":[]`, []string{"blackhole 10.0.0.0/8 table main scope link"}},
		{"[\n \"blackhole 10.0.0.0/8 table main scope link\" ,\t\"local 127.0.0.0/8 dev lo table local scope host\"\n]",
			[]string{"blackhole 10.0.0.0/8 table main scope link", "local 127.0.0.0/8 dev lo table local scope host"}},
	}
	for _, tt := range tests {
		m, err := Decode(strings.NewReader(head + tt.routes + "}"))
		if err != nil {
			t.Errorf("%s: %v", tt.routes, err)
			continue
		}
		var got []string
		for _, r := range m.Routes {
			text, _ := r.MarshalText()
			got = append(got, string(text))
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: routes %q, want %q", tt.routes, got, tt.want)
		}
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
	f.Add([]byte(`{"version":"fibguard.snapshot/v1","routes":["blackhole 10.0.0.0/8 table main scope link"],"ROUTES":["blackhole 10.\u0031.0.0/16 table main scope link"],"unmerged":true}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(bytes.NewReader(b))
		// Cutting the routes out of the document must not change what is
		// read.
		std, stdErr := decode(b, false)
		if (err == nil) != (stdErr == nil) {
			t.Fatalf("Decode error %v, through encoding/json alone %v", err, stdErr)
		}
		if err != nil {
			return
		}
		if !reflect.DeepEqual(m, std) {
			t.Fatalf("Decode and encoding/json alone read different models")
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

// TestDecodeFirstBadRoute checks that, with the routes parsed in parallel,
// the error names the first bad route.
func TestDecodeFirstBadRoute(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"version":"fibguard.snapshot/v1","routes":[`)
	for i := range 60000 {
		if i > 0 {
			b.WriteByte(',')
		}
		line := "blackhole 10.0.0.0/8 table main scope link"
		if i == 31000 || i == 45000 || i == 59999 {
			line = "blackhole 10.0.0.0/8 table main scope sideways"
		}
		b.WriteString(`"` + line + `"`)
	}
	b.WriteString(`]}`)
	_, err := Decode(strings.NewReader(b.String()))
	if err == nil || !strings.Contains(err.Error(), "route 31000 ") {
		t.Errorf("Decode = %v, want an error naming route 31000", err)
	}
}
