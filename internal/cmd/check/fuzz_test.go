package check

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/containernetworking/cni/libcni"

	"github.com/fibguard/fibguard/checker"
	"github.com/fibguard/fibguard/internal/netconf"
)

// FuzzGuardAsPlugin: whatever fibguard's entry in a conflist holds,
// `check` reads it as the plugin does when the runtime hands it that
// entry: it refuses what the plugin refuses (so that it never predicts a
// verdict for a configuration on which every ADD fails), and what the
// plugin accepts it reads with the same mode, checks and ranges.
func FuzzGuardAsPlugin(f *testing.F) {
	for _, s := range []string{
		`{"type":"fibguard"}`,
		`{"type":"fibguard","mode":"warn","checks":{"FG001":"off","FG003":"warning"},"serviceCIDRs":["10.96.0.0/12"],"clusterCIDRs":["10.244.0.1/16"]}`,
		`{"type":"fibguard","mode":"strict","checks":{"FG999":"x"},"serviceCIDRs":["10.96.0.0"]}`,
		`{"type":"fibguard","MODE":"warn","Checks":{"FG001":"off"}}`,
		`{"type":"fibguard","logFile":"relative","eventTimeout":"-1s"}`,
		`{"type":"fibguard","mode":5,"checks":[]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, entry string) {
		list, err := libcni.ConfListFromBytes([]byte(`{"cniVersion":"1.0.0","name":"pods","plugins":[` + bridgeEntry + `,` + entry + `]}`))
		if err != nil || len(list.Plugins) != 2 || list.Plugins[1].Network.Type != netconf.Type {
			return
		}
		stdin, err := libcni.InjectConf(list.Plugins[1], map[string]any{"name": list.Name, "cniVersion": list.CNIVersion})
		if err != nil {
			return
		}
		conf, perr := netconf.Parse(stdin.Bytes)
		g, gerr := findGuard(list)
		switch {
		case perr != nil && gerr == nil:
			t.Fatalf("check accepts the entry %s, the plugin refuses it: %v", entry, perr)
		case perr == nil && gerr != nil:
			t.Fatalf("check refuses the entry %s, the plugin accepts it: %v", entry, gerr)
		case perr != nil:
			return
		}
		if g.mode != conf.Mode || !slices.Equal(g.serviceCIDRs, conf.ServiceCIDRs) || !slices.Equal(g.clusterCIDRs, conf.ClusterCIDRs) ||
			!maps.Equal(g.options.Disabled, conf.Options.Disabled) || !maps.Equal(g.options.Severity, conf.Options.Severity) {
			got, _ := json.Marshal(g.options)
			want, _ := json.Marshal(conf.Options)
			t.Fatalf("entry %s: check reads mode %s, %s, %v, %v; the plugin %s, %s, %v, %v",
				entry, g.mode, got, g.serviceCIDRs, g.clusterCIDRs, conf.Mode, want, conf.ServiceCIDRs, conf.ClusterCIDRs)
		}
	})
}

// FuzzCheck runs `check -o json` on conflists of any content, on the
// typical node: it never panics; it either refuses the input (exit 2, an
// error, no report) or prints a JSON report whose findings and mode decide
// the exit code (1 exactly when one is at error level and the mode is not
// warn).
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		`{"cniVersion":"1.0.0","name":"x","plugins":[` + bridgeEntry + `,{"type":"fibguard"}]}`,
		`{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"bridge","ipam":{"type":"host-local","ranges":[[{"subnet":"127.16.0.0/16"}]]}},{"type":"fibguard","mode":"warn"}]}`,
		`{"cniVersion":"0.3.1","name":"x","plugins":[{"type":"ptp","ipam":{"type":"static","addresses":[{"address":"10.0.0.10/24"}]}}]}`,
		`{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"fibguard"},` + bridgeEntry + `]}`,
		`{"plugins":[]}`, `[]`, ``,
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, conflist string) {
		path := filepath.Join(dir, "x.conflist")
		if err := os.WriteFile(path, []byte(conflist), 0o600); err != nil {
			t.Fatal(err)
		}
		out, code, err := execute(t, path, "-o", "json")
		switch code {
		case ExitUsage:
			if err == nil || out != "" {
				t.Fatalf("exit %d with error %v and output %q", code, err, out)
			}
			return
		case ExitClean, ExitFindings:
		default:
			t.Fatalf("exit code %d (%v)", code, err)
		}
		var rep struct {
			Mode     string            `json:"mode"`
			Findings []checker.Finding `json:"findings"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("exit %d, output not JSON: %v\n%s", code, err, out)
		}
		errs := 0
		for _, fd := range rep.Findings {
			if fd.Severity == checker.SeverityError {
				errs++
			}
		}
		if (errs > 0 && rep.Mode != "warn") != (code == ExitFindings) {
			t.Fatalf("exit %d with %d findings at error level in mode %q", code, errs, rep.Mode)
		}
	})
}
