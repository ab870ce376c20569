package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
)

// BenchmarkADD measures what fibguard adds to a pod's ADD: the chain
// bridge + host-local with fibguard chained with its defaults (the entry
// {"type": "fibguard"}, as a user appends it), against the same chain
// with the reference tuning plugin chained instead (the cost of any one
// more plugin: an exec, a config parse, the netns entered), with the
// floor, the emptiest Go plugin that can be chained (floorplugin: the
// exec of a static Go binary and its runtime's start), and the bare
// chain. Every plugin is a static binary, as the reference plugins are
// built. The variants run round-robin within each iteration, the first
// rotating, so that machine noise hits all of them alike; each iteration
// is one pod per variant, in a fresh pod namespace on the same host
// namespace and bridge. Only ADD is timed: creating the namespace, DEL
// and removing the namespace are not. The plugins' standard error (where
// fibguard logs by default) goes to a file, as a runtime's goes to its log.
//
// Two harnesses:
//   - libcni: the runtime's way. One long-lived process calls libcni,
//     which execs each plugin of the chain: what containerd and CRI-O do.
//   - process: cnitool's way. A process per pod (cniadd, cnitool's add
//     with its own cache directory) loads the conflist and calls libcni:
//     each ADD also pays that process's start, for every variant alike.
//
// The sub-benchmarks differ in the harness and the host: a node with 1,000
// routes, and one with 100,000, in its main table besides its default
// route. It reports each variant's median time per ADD
// (fibguard-ns/ADD, tuning-ns/ADD, floor-ns/ADD, bare-ns/ADD) and the
// ratios of the medians (fibguard/tuning, fibguard/floor, tuning/floor,
// fibguard/bare); ns/op is the variants' ADDs together. With
// FIBGUARD_BENCH_BASELINE set to the source tree of another commit, that
// commit's plugin, with the same entry, runs as one more variant,
// baseline-ns/ADD, with baseline/tuning and fibguard/baseline. Run it with
// at least 100 pods per variant:
//
//	go test -run '^$' -bench BenchmarkADD -benchtime 100x ./test/integration/
func BenchmarkADD(b *testing.B) {
	for _, harness := range []string{"libcni", "process"} {
		for _, bc := range []struct {
			name   string
			routes int
		}{
			{"routes=1k", 1_000},
			{"routes=100k", 100_000},
		} {
			b.Run(harness+"/"+bc.name, func(b *testing.B) { benchmarkADD(b, harness, bc.routes) })
		}
	}
}

// benchHost is the node of the benchmark: an uplink fgup0 (a veth with its
// peer up) on 10.200.0.1/16 and a default route through it, and routes
// more /24s under 11.0.0.0 through it, none of which covers a pod.
func benchHost(routes int) []string {
	cmds := []string{
		"link add fgup0 type veth peer name fgup1",
		"link set fgup0 up",
		"link set fgup1 up",
		"addr add 10.200.0.1/16 dev fgup0",
		"route add default via 10.200.0.254 dev fgup0",
	}
	for i := range routes {
		cmds = append(cmds, fmt.Sprintf("route add %d.%d.%d.0/24 via 10.200.0.2 dev fgup0", 11+i>>16, i>>8&0xff, i&0xff))
	}
	return cmds
}

// benchVariant is one chain of BenchmarkADD and how its ADD runs.
type benchVariant struct {
	name string
	list *libcni.NetworkConfigList
	add  func(*sandbox) error
}

func benchmarkADD(b *testing.B, harness string, routes int) {
	needFibguard(b)
	floor, err := floorPlugin()
	if err != nil {
		b.Fatal(err)
	}
	w := newWorld(b, benchHost(routes)...)
	w.stderrToFile()
	pods := bridgeNet("10.88.0.0/16")
	nets := []struct {
		name string
		net  network
	}{
		{"fibguard", pods.withEntry(map[string]any{"type": "fibguard"})},
		{"tuning", pods.withTuning()},
		{"floor", pods.withEntry(map[string]any{"type": floor})},
		{"bare", pods},
	}
	var variants []benchVariant
	for _, n := range nets {
		variants = append(variants, w.benchVariant(b, harness, n.name, w.load(n.net)))
	}
	if dir := os.Getenv(baselineEnv); dir != "" {
		list := w.load(pods.withEntry(map[string]any{"type": baselinePlugin(b, dir)}))
		variants = append(variants, w.benchVariant(b, harness, "baseline", list))
	}
	times := make([][]time.Duration, len(variants))
	b.ResetTimer()
	for i := range b.N {
		for k := range variants {
			v := (i + k) % len(variants)
			b.StopTimer()
			took := w.timeADD(b, &variants[v])
			times[v] = append(times[v], took)
			b.StartTimer()
		}
	}
	b.StopTimer()
	reportADD(b, variants, times)
}

// timeADD sets up a sandbox, times the variant's ADD for it, and tears
// it down again (untimed).
func (w *world) timeADD(b *testing.B, v *benchVariant) time.Duration {
	s, err := w.newSandbox()
	if err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	start := time.Now()
	addErr := v.add(s)
	took := time.Since(start)
	b.StopTimer()
	if addErr != nil {
		b.Fatalf("%s: ADD: %v", v.name, addErr)
	}
	if err := w.delSandbox(v.list, s); err != nil {
		b.Fatalf("%s: DEL: %v", v.name, err)
	}
	if err := s.remove(); err != nil {
		b.Fatal(err)
	}
	return took
}

// reportADD reports each variant's median ADD and the ratios of medians.
func reportADD(b *testing.B, variants []benchVariant, times [][]time.Duration) {
	med := map[string]float64{}
	for v, ts := range times {
		med[variants[v].name] = float64(median(ts).Nanoseconds())
		b.ReportMetric(med[variants[v].name], variants[v].name+"-ns/ADD")
	}
	for _, r := range [][2]string{
		{"fibguard", "tuning"}, {"fibguard", "floor"}, {"tuning", "floor"}, {"fibguard", "bare"},
		{"baseline", "tuning"}, {"fibguard", "baseline"},
	} {
		if num, den := med[r[0]], med[r[1]]; num > 0 && den > 0 {
			b.ReportMetric(num/den, r[0]+"/"+r[1])
		}
	}
	if b.N > 1 && b.N < 100 {
		b.Logf("medians of %d pods per variant; the figures want at least 100 (-benchtime 100x)", b.N)
	}
}

// benchVariant returns the variant name of list, whose ADD runs the
// harness's way; DEL always runs through libcni in this process, on the
// same cache.
func (w *world) benchVariant(b *testing.B, harness, name string, list *libcni.NetworkConfigList) benchVariant {
	v := benchVariant{name: name, list: list}
	switch harness {
	case "libcni":
		v.add = func(s *sandbox) error { _, err := w.addSandbox(list, s); return err }
	case "process":
		v.add = w.processAdd(b, name, list)
	default:
		b.Fatalf("harness %q", harness)
	}
	return v
}

// baselineEnv names a source tree of fibguard (a git archive of another
// commit) whose plugin BenchmarkADD builds, as it builds the one under
// test, and runs as a fourth variant, "baseline", interleaved with the
// others: before and after a change in one run, on the same machine load.
const baselineEnv = "FIBGUARD_BENCH_BASELINE"

// baselinePlugin builds the plugin of the tree dir beside the fibguard
// under test as fibguard-baseline, the same way (static, written by the
// Go linker, as the binaries it is compared with), and returns its type.
func baselinePlugin(b *testing.B, dir string) string {
	b.Helper()
	const name = "fibguard-baseline"
	cmd := exec.Command("go", "build", "-o", filepath.Join(setup.fgDir, name), "./cmd/fibguard")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s=%s: go build ./cmd/fibguard: %v\n%s", baselineEnv, dir, err, out)
	}
	return name
}

// median returns the median of durations (the mean of the middle two for
// an even count).
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
