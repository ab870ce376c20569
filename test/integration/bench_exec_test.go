package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"
)

// linkedClientGo is the previous design of the plugin, rebuilt for the
// comparison: cmd/fibguard with the Event recorder (package podevent/kube,
// k8s.io/client-go) linked in, as the plugin binary had it before Events
// moved to cmd/fibguard-event. On the accept path that design called
// nothing of it either: what it paid was client-go's package
// initialisation and a binary three to four times larger. The added file
// references the Recorder behind a condition that is never true (an
// environment value cannot hold a NUL byte), so that the linker keeps the
// client's code as the plugin's call kept it. The source tree is not
// touched: go build's -overlay adds the file to a temporary copy of the
// package.
func linkedClientGo(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	extra := filepath.Join(dir, "zz_clientgo.go")
	src := `package main

import (
	"context"
	"os"

	"github.com/fibguard/fibguard/podevent"
	"github.com/fibguard/fibguard/podevent/kube"
)

func init() {
	if os.Getenv("FIBGUARD_BENCH_NEVER") == "\x00" {
		_, _ = (&kube.Recorder{}).Record(context.Background(), podevent.Event{})
	}
}
`
	if err := os.WriteFile(extra, []byte(src), 0o644); err != nil {
		b.Fatal(err)
	}
	pkgDir, err := filepath.Abs(filepath.Join("..", "..", "cmd", "fibguard"))
	if err != nil {
		b.Fatal(err)
	}
	overlay, err := json.Marshal(map[string]any{"Replace": map[string]string{filepath.Join(pkgDir, "zz_clientgo.go"): extra}})
	if err != nil {
		b.Fatal(err)
	}
	overlayFile := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlayFile, overlay, 0o644); err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(dir, "fibguard-clientgo")
	cmd := exec.Command("go", "build", "-overlay", overlayFile, "-o", bin, "github.com/fibguard/fibguard/cmd/fibguard")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build -overlay ./cmd/fibguard: %v\n%s", err, out)
	}
	return bin
}

// BenchmarkExec measures one run of a plugin binary as the runtime makes
// it — exec, package initialisation, the command, exit — for the plugin
// as built (client-go left out, Events in cmd/fibguard-event), the
// previous design with client-go linked in (linkedClientGo), and the
// reference tuning plugin with nothing to tune (BenchmarkADD's baseline),
// interleaved in the same run. VERSION is the bare start-up; ADD is the
// accept path of a healthy bridge pod (prevResult from the reference
// bridge plugin; for fibguard both namespaces read, every check run, the
// log record written), which records no Event in either design.
//
// It reports each binary's median time per exec (fibguard-ns/exec,
// clientgo-ns/exec, tuning-ns/exec), what leaving client-go out saves
// (saved-ns/exec, clientgo/fibguard), and fibguard/tuning; VERSION also
// reports the binaries' sizes (MB, as built here: static, not stripped).
// Run it with many execs:
//
//	go test -run '^$' -bench BenchmarkExec -benchtime 200x -count 6 ./test/integration/
func BenchmarkExec(b *testing.B) {
	needFibguard(b)
	bins := []struct{ name, path string }{
		{"fibguard", filepath.Join(setup.fgDir, "fibguard")},
		{"clientgo", linkedClientGo(b)},
		{"tuning", filepath.Join(setup.pluginDir, "tuning")},
	}
	sizes := make([]float64, len(bins))
	for i, bin := range bins {
		fi, err := os.Stat(bin.path)
		if err != nil {
			b.Fatal(err)
		}
		sizes[i] = float64(fi.Size()) / 1e6
	}
	w := newWorld(b)
	p := w.newPod()
	net := bridgeNet("10.88.0.0/24")
	list := w.load(net)
	res, err := w.add(list, p)
	if err != nil {
		b.Fatalf("ADD of the bare chain: %v", err)
	}
	addStdin, err := chainedStdin(w, net.withFibguard(map[string]any{"logLevel": "info"}), res)
	if err != nil {
		b.Fatal(err)
	}
	tuningStdin, err := chainedStdin(w, net.withTuning(), res)
	if err != nil {
		b.Fatal(err)
	}
	version := []byte(`{"cniVersion":"1.0.0"}`)
	for _, cmd := range []struct {
		name  string
		env   []string
		stdin [][]byte // per binary
	}{
		{"VERSION", []string{"CNI_COMMAND=VERSION"}, [][]byte{version, version, version}},
		{"ADD", []string{
			"CNI_COMMAND=ADD", "CNI_CONTAINERID=" + p.rt.ContainerID, "CNI_NETNS=" + p.ns.Path(),
			"CNI_IFNAME=eth0", "CNI_PATH=" + setup.fgDir,
			"CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0",
		}, [][]byte{addStdin, addStdin, tuningStdin}},
	} {
		b.Run(cmd.name, func(b *testing.B) {
			times := make([][]time.Duration, len(bins))
			for i := range b.N {
				for k := range bins {
					v := (i + k) % len(bins)
					took, err := w.execIn(bins[v].path, cmd.env, cmd.stdin[v])
					if err != nil {
						b.Fatalf("%s %s: %v", bins[v].name, cmd.name, err)
					}
					times[v] = append(times[v], took)
				}
			}
			b.StopTimer()
			medians := make([]float64, len(bins))
			for v, ts := range times {
				medians[v] = float64(median(ts).Nanoseconds())
				b.ReportMetric(medians[v], bins[v].name+"-ns/exec")
			}
			b.ReportMetric(medians[1]-medians[0], "saved-ns/exec")
			b.ReportMetric(medians[1]/medians[0], "clientgo/fibguard")
			b.ReportMetric(medians[0]/medians[2], "fibguard/tuning")
			if cmd.name == "VERSION" {
				for v, size := range sizes {
					b.ReportMetric(size, bins[v].name+"-MB")
				}
			}
		})
	}
}

// chainedStdin is the stdin the runtime gives the last plugin of net when
// the plugins before it returned res.
func chainedStdin(w *world, net network, res *current.Result) ([]byte, error) {
	b, err := net.conflist(w.bridge, w.dataDir, w.logFile)
	if err != nil {
		return nil, err
	}
	var list struct {
		CNIVersion string           `json:"cniVersion"`
		Name       string           `json:"name"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("decode conflist: %w", err)
	}
	conf := list.Plugins[len(list.Plugins)-1]
	conf["cniVersion"], conf["name"] = list.CNIVersion, list.Name
	raw, err := json.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("encode result: %w", err)
	}
	var prev map[string]any
	if err := json.Unmarshal(raw, &prev); err != nil {
		return nil, fmt.Errorf("decode result: %w", err)
	}
	// The runtime hands the result over in the conflist's version; 1.0.0
	// and 1.1.0 results have the same fields.
	prev["cniVersion"] = list.CNIVersion
	conf["prevResult"] = prev
	return json.Marshal(conf)
}

// execIn runs bin in the world's host namespace, as the runtime runs a
// plugin, and returns how long it took; a non-zero exit is an error.
func (w *world) execIn(bin string, env []string, stdin []byte) (time.Duration, error) {
	start, end, err := w.execTimed(bin, env, stdin)
	return time.Duration(end - start), err
}
