package agent

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/fibguard/fibguard/checker"
)

// TestIPAMRanges reads the pod networks of the primary configuration:
// host-local's ranges and old-style subnet, in every plugin; other IPAM
// plugins and later files are not read.
func TestIPAMRanges(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"10-pods.conflist": `{"cniVersion":"1.0.0","name":"pods","plugins":[` +
			`{"type":"bridge","ipam":{"type":"host-local","ranges":[[{"subnet":"127.16.0.0/16"}],[{"subnet":"fd00::/64"}]]}},` +
			`{"type":"macvlan","ipam":{"type":"host-local","subnet":"10.9.0.7/24"}},` +
			`{"type":"ptp","ipam":{"type":"whereabouts","range":"10.8.0.0/16"}}]}`,
		"20-other.conflist": `{"cniVersion":"1.0.0","name":"other","plugins":[{"type":"bridge","ipam":{"type":"host-local","subnet":"10.7.0.0/16"}}]}`,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ipamRanges(dir)
	if err != nil {
		t.Fatal(err)
	}
	var prefixes []string
	for _, n := range got {
		prefixes = append(prefixes, n.Prefix.String())
		if n.Source != "IPAM range of "+filepath.Join(dir, "10-pods.conflist") {
			t.Errorf("source %q", n.Source)
		}
	}
	if want := []string{"127.16.0.0/16", "fd00::/64", "10.9.0.0/24"}; !slices.Equal(prefixes, want) {
		t.Errorf("ranges %v, want %v", prefixes, want)
	}
	// Through checkNode: the loopback range is a node-wide error.
	v := checkNode(ClusterView{}, got, nil)
	if codes := (Verdict{Findings: v.Findings}).Codes(); !slices.Equal(codes, []checker.Code{checker.CodeLoopbackNetwork}) {
		t.Errorf("node codes %v, want FG050", codes)
	}
	if none, err := ipamRanges(t.TempDir()); err != nil || none != nil {
		t.Errorf("empty dir: %v, %v", none, err)
	}
}
