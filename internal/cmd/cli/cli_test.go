package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"testing"
)

func TestParseAddr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"1.2.3.400", `destination "1.2.3.400" is not an IP address: want an IPv4 address: four numbers from 0 to 255`},
		{"010.0.0.1", "without leading zeros"},
		{"10.0.0.0/8", "want an address, not a prefix"},
		{"fd00::zz", "want an IPv6 address such as fd00::5"},
		{"", "it is empty"},
		{"pod-a", "want an IPv4 address such as 10.244.0.5 or an IPv6 address"},
	}
	for _, tt := range tests {
		_, err := ParseAddr("destination", tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "ParseAddr") {
			t.Errorf("ParseAddr(%q): %v, want it to say %q in our words", tt.in, err, tt.want)
		}
	}
	if a, err := ParseAddr("destination", "fe80::1%eth0"); err != nil || a != netip.MustParseAddr("fe80::1%eth0") {
		t.Errorf("ParseAddr(fe80::1%%eth0) = %v, %v", a, err)
	}
}

func TestUnparse(t *testing.T) {
	_, cause := netip.ParseAddr("10.0.0.300")
	err := Unparse(fmt.Errorf(`route 0 ("dst":"10.0.0.300/24"): bad prefix: %w`, cause))
	if got, want := err.Error(), `route 0 ("dst":"10.0.0.300/24"): bad prefix: "10.0.0.300" is not a valid address (a number above 255)`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if !errors.Is(err, cause) {
		t.Error("the cause is lost")
	}
	if plain := io.EOF; Unparse(plain) != plain { //nolint:errorlint // the very same error must come back
		t.Error("an error without a parser's words is changed")
	}
}

func TestJSONSyntax(t *testing.T) {
	tests := []struct{ in, want string }{
		{"[1,\n 2,\n x]", "line 3, column 2"},
		{"", "line 1, column 1"},
		{"[", "line 1, column 1: unexpected end of JSON input"},
		{"{} x", "line 1, column 4"},
	}
	for _, tt := range tests {
		err := JSONSyntax([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("JSONSyntax(%q) = %v, want it to say %q", tt.in, err, tt.want)
		}
	}
	if err := JSONSyntax([]byte(`[{"a": 1}]`)); err != nil {
		t.Errorf("valid JSON: %v", err)
	}
}

func TestPathError(t *testing.T) {
	_, err := os.Open("/nonexistent/x.json")
	got := PathError("snapshot", "/nonexistent/x.json", err)
	if got.Error() != "snapshot /nonexistent/x.json: does not exist" || !errors.Is(got, fs.ErrNotExist) {
		t.Errorf("got %q", got)
	}
	nested := errors.New("load: network namespace /x: open network namespace /x: not a namespace")
	if got := PathError("network namespace", "/x", nested).Error(); got != "network namespace /x: not a namespace" {
		t.Errorf("got %q", got)
	}
}

func TestCodeAndMessage(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want int
	}{{nil, 0}, {io.EOF, 2}, {Failed(io.EOF), 1}, {fmt.Errorf("x: %w", Failed(io.EOF)), 1}} {
		if got := Code(tt.err); got != tt.want {
			t.Errorf("Code(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
	if got := Message(errors.New("rule 0:\tfrom all\nlookup local")); got != "rule 0: from all lookup local" {
		t.Errorf("Message = %q", got)
	}
}

func TestEncode(t *testing.T) {
	v := map[string]any{"dst": "10.0.0.1", "trace": []string{"a: b"}}
	var j, y bytes.Buffer
	if err := Encode(&j, JSON, v); err != nil {
		t.Fatal(err)
	}
	if err := Encode(&y, YAML, v); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(j.String(), "{\n  \"dst\"") || y.String() != "dst: 10.0.0.1\ntrace:\n- 'a: b'\n" {
		t.Errorf("json %q, yaml %q", j.String(), y.String())
	}
	if _, err := ParseFormat("xml"); err == nil || err.Error() != `-o "xml": want text, json or yaml` {
		t.Errorf("ParseFormat(xml): %v", err)
	}
}

func TestUnparseNested(t *testing.T) {
	_, cause := netip.ParsePrefix("1.2.3.400/24")
	err := Unparse(fmt.Errorf("addrs[0]: %w", cause))
	if got, want := err.Error(), `addrs[0]: "1.2.3.400/24" is not a valid prefix (a number above 255)`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
