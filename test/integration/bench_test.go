package integration

import (
	"encoding/json"
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
// bridge + host-local with fibguard chained, against the same chain with
// the reference tuning plugin chained instead (the cost of any one more
// plugin: an exec, a config parse, the netns entered) and against the bare
// chain. The three run round-robin within each iteration, the first
// rotating, so that machine noise hits all of them alike; each iteration
// is one pod per variant, in a fresh pod namespace on the same host
// namespace and bridge. Only ADD is timed: creating the namespace, DEL
// and removing the namespace are not.
//
// It reports each variant's median time per ADD (fibguard-ns/ADD,
// tuning-ns/ADD, bare-ns/ADD) and the ratios of the medians
// (fibguard/tuning, fibguard/bare); ns/op is the three ADDs together.
// With FIBGUARD_BENCH_BASELINE set to the source tree of another commit,
// that commit's plugin runs as a fourth variant, baseline-ns/ADD, with
// baseline/tuning and fibguard/baseline.
// The sub-benchmarks differ in the host: a node with a default route, and
// the same node with 100,000 more routes in its main table. Run it with at
// least 100 pods per variant:
//
//	go test -run '^$' -bench BenchmarkADD -benchtime 100x ./test/integration/
func BenchmarkADD(b *testing.B) {
	for _, bc := range []struct {
		name   string
		routes int
	}{
		{"routes=0", 0},
		{"routes=100k", 100_000},
	} {
		b.Run(bc.name, func(b *testing.B) { benchmarkADD(b, bc.routes) })
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

func benchmarkADD(b *testing.B, routes int) {
	needFibguard(b)
	w := newWorld(b, benchHost(routes)...)
	pods := bridgeNet("10.88.0.0/16")
	variants := []struct {
		name string
		list *libcni.NetworkConfigList
	}{
		// The production log level: one record per accepted pod.
		{"fibguard", w.load(pods.withFibguard(map[string]any{"logLevel": "info"}))},
		{"tuning", w.load(pods.withTuning())},
		{"bare", w.load(pods)},
	}
	if dir := os.Getenv(baselineEnv); dir != "" {
		variants = append(variants, struct {
			name string
			list *libcni.NetworkConfigList
		}{"baseline", baselineList(b, w, dir, pods.withFibguard(map[string]any{"logLevel": "info"}))})
	}
	times := make([][]time.Duration, len(variants))
	b.ResetTimer()
	for i := range b.N {
		for k := range variants {
			v := (i + k) % len(variants)
			b.StopTimer()
			s, err := w.newSandbox()
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			start := time.Now()
			_, addErr := w.addSandbox(variants[v].list, s)
			took := time.Since(start)
			b.StopTimer()
			if addErr != nil {
				b.Fatalf("%s: ADD: %v", variants[v].name, addErr)
			}
			times[v] = append(times[v], took)
			if err := w.delSandbox(variants[v].list, s); err != nil {
				b.Fatalf("%s: DEL: %v", variants[v].name, err)
			}
			if err := s.remove(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	b.StopTimer()
	medians := make([]float64, len(variants))
	for v, ts := range times {
		medians[v] = float64(median(ts).Nanoseconds())
		b.ReportMetric(medians[v], variants[v].name+"-ns/ADD")
	}
	b.ReportMetric(medians[0]/medians[1], "fibguard/tuning")
	b.ReportMetric(medians[0]/medians[2], "fibguard/bare")
	if len(medians) > 3 {
		b.ReportMetric(medians[3]/medians[1], "baseline/tuning")
		b.ReportMetric(medians[0]/medians[3], "fibguard/baseline")
	}
	if b.N > 1 && b.N < 100 {
		b.Logf("medians of %d pods per variant; the figures want at least 100 (-benchtime 100x)", b.N)
	}
}

// baselineEnv names a source tree of fibguard (a git archive of another
// commit) whose plugin BenchmarkADD builds, as it builds the one under
// test, and runs as a fourth variant, "baseline", interleaved with the
// others: before and after a change in one run, on the same machine load.
const baselineEnv = "FIBGUARD_BENCH_BASELINE"

// baselineList builds the plugin of the tree dir beside the fibguard under
// test as fibguard-baseline, the same way (static, written by the Go
// linker, as the binaries it is compared with), and returns net's chain
// with it in fibguard's place.
func baselineList(b *testing.B, w *world, dir string, net network) *libcni.NetworkConfigList {
	b.Helper()
	bin := filepath.Join(setup.fgDir, "fibguard-baseline")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/fibguard")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s=%s: go build ./cmd/fibguard: %v\n%s", baselineEnv, dir, err, out)
	}
	raw, err := net.conflist(w.bridge, w.dataDir, w.logFile)
	if err != nil {
		b.Fatal(err)
	}
	var list map[string]any
	if err := json.Unmarshal(raw, &list); err != nil {
		b.Fatal(err)
	}
	plugins, _ := list["plugins"].([]any)
	for _, p := range plugins {
		if conf, ok := p.(map[string]any); ok && conf["type"] == "fibguard" {
			conf["type"] = "fibguard-baseline"
		}
	}
	if raw, err = json.Marshal(list); err != nil {
		b.Fatal(err)
	}
	l, err := libcni.ConfListFromBytes(raw)
	if err != nil {
		b.Fatal(err)
	}
	return l
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
