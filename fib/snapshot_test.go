package fib

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func TestSnapshotRoundTrip(t *testing.T) {
	m, _ := benchModel(V4, 500)
	m.st.Conf = map[string]DevConf{"eth0": {RouteLocalnet: true}, ConfAll: {RPFilter: 2}}
	m.st.Unmerged = true
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
		for _, r := range m.st.Routes {
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
		for _, r := range m.st.Routes {
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

// repeated is a snapshot whose list key holds n copies of item, the
// copies numbered where item holds %d.
func repeated(key, open, item, close string, n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"version":"fibguard.snapshot/v1","` + key + `":` + open)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		if strings.Contains(item, "%d") {
			fmt.Fprintf(&b, item, i)
		} else {
			b.WriteString(item)
		}
	}
	b.WriteString(close + "}")
	return b.Bytes()
}

// TestDecodeLimits: each list of a snapshot is refused past its limit,
// the error naming the list and the limit, before the items past it are
// decoded; a list at its limit goes on to the usual checks. The input is
// the cheapest per item, where decoding costs most memory per byte read.
func TestDecodeLimits(t *testing.T) {
	tests := []struct {
		class, key, open, item, close string
		limit                         int
	}{
		{"links", "links", "[", "{}", "]", MaxSnapshotItems},
		{"addresses", "addrs", "[", "{}", "]", MaxSnapshotItems},
		{"rules", "rules", "[", "{}", "]", MaxSnapshotItems},
		{"devices' settings", "conf", "{", `"d%d":{}`, "}", MaxSnapshotItems},
		{"routes", "routes", "[", `""`, "]", MaxSnapshotRoutes},
	}
	for _, tt := range tests {
		t.Run(tt.class, func(t *testing.T) {
			_, err := Decode(bytes.NewReader(repeated(tt.key, tt.open, tt.item, tt.close, tt.limit+1)))
			want := fmt.Sprintf("more than %d", tt.limit)
			if !errors.Is(err, ErrSnapshotTooMany) || !strings.Contains(err.Error(), tt.key) || !strings.Contains(err.Error(), want) {
				t.Errorf("%d %s: %v, want ErrSnapshotTooMany naming %q and %q", tt.limit+1, tt.class, err, tt.key, want)
			}
			if _, err := Decode(bytes.NewReader(repeated(tt.key, tt.open, tt.item, tt.close, tt.limit))); errors.Is(err, ErrSnapshotTooMany) {
				t.Errorf("%d %s, the limit: %v", tt.limit, tt.class, err)
			}
		})
	}
}

// TestDecodeMemoryBounded: 2 million empty rules, 6 MB of JSON that took
// 1.9 GB of allocations to decode whole, are refused having allocated a
// small part of that: the first MaxSnapshotItems rules and the buffers.
func TestDecodeMemoryBounded(t *testing.T) {
	in := repeated("rules", "[", "{}", "]", 2_000_000)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Decode(bytes.NewReader(in))
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrSnapshotTooMany) {
		t.Fatalf("Decode: %v, want ErrSnapshotTooMany", err)
	}
	const bound = 256 << 20
	if got := after.TotalAlloc - before.TotalAlloc; got > bound {
		t.Errorf("refusing %d bytes of rules allocated %d MiB, more than %d MiB", len(in), got>>20, bound>>20)
	} else {
		t.Logf("refusing %d bytes of rules allocated %d MiB", len(in), got>>20)
	}
}

// TestDecodeSizeLimit: an endless stream is read up to MaxSnapshotSize and
// refused with ErrSnapshotTooLarge, which names the limit.
func TestDecodeSizeLimit(t *testing.T) {
	endless := io.MultiReader(strings.NewReader(`{"version":"`), zeros{})
	_, err := Decode(endless)
	if !errors.Is(err, ErrSnapshotTooLarge) || !strings.Contains(err.Error(), "256 MiB") {
		t.Errorf("an endless stream: %v, want ErrSnapshotTooLarge naming 256 MiB", err)
	}
}

// zeros is an endless stream of '0'.
type zeros struct{}

var zeroBlock = bytes.Repeat([]byte{'0'}, 64<<10)

func (zeros) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		n += copy(p[n:], zeroBlock)
	}
	return n, nil
}
