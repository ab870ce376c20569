package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// FuzzJSONSyntax: any input gets an answer, nil exactly for valid JSON,
// else one line whose line and column lie within the input.
func FuzzJSONSyntax(f *testing.F) {
	for _, s := range []string{"", "[", "[1,\n 2,\n x]", `{"a": 1}`, "\n\n\n", "[\"\\u12\"]", "[1] 2"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := JSONSyntax(b)
		if (err == nil) != json.Valid(b) {
			t.Fatalf("JSONSyntax(%q) = %v, json.Valid %v", b, err, json.Valid(b))
		}
		if err == nil {
			return
		}
		var line, col int
		if _, serr := fmt.Sscanf(err.Error(), "not valid JSON at line %d, column %d:", &line, &col); serr != nil {
			t.Fatalf("JSONSyntax(%q) = %q: %v", b, err, serr)
		}
		lines := strings.Split(string(b), "\n")
		if line < 1 || line > len(lines) || col < 1 || col > len(lines[line-1])+1 {
			t.Fatalf("JSONSyntax(%q): line %d, column %d outside the input", b, line, col)
		}
	})
}
