package plugin

import (
	"path/filepath"
	"testing"

	"github.com/fibguard/fibguard/internal/netconf"
)

// BenchmarkAddInProcess is fibguard's own work on an accepted ADD — the
// configuration and prevResult parsed, both namespaces read, every check
// run, the log record written, the result printed — without the exec and
// the process start-up that the runtime adds (test/integration's
// BenchmarkADD and BenchmarkExec measure those). The sub-benchmarks split
// it: parse is netconf.Parse alone.
//
//	go test -run '^$' -bench AddInProcess -benchtime 2000x ./plugin/
func BenchmarkAddInProcess(b *testing.B) {
	pn := newBridgePodNet(b, "10.22.0.1/24", "10.22.0.2/24")
	stdin := confJSON(b, "1.0.0", map[string]any{
		"prevResult": pn.prevResult(b, "1.0.0"),
		"logFile":    filepath.Join(b.TempDir(), "fibguard.log"), "logLevel": "info",
	})
	b.Run("parse", func(b *testing.B) {
		for b.Loop() {
			if _, err := netconf.Parse(stdin); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ADD", func(b *testing.B) {
		p, stdout, _ := inProcess(pn)
		args := cmdArgs(pn.pod.Path(), stdin)
		for b.Loop() {
			stdout.Reset()
			if err := p.Add(args); err != nil {
				b.Fatal(err)
			}
		}
	})
}
