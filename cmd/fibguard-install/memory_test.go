package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/fibguard/fibguard/install"
)

// memoryLimit is the installer container's memory limit in
// manifests/base/daemonset.yaml: past it the kernel kills the installer.
func memoryLimit(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("../../manifests/base/daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ds struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Name      string `json:"name"`
						Resources struct {
							Limits map[string]string `json:"limits"`
						} `json:"resources"`
					} `json:"containers"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &ds); err != nil {
		t.Fatal(err)
	}
	for _, c := range ds.Spec.Template.Spec.Containers {
		if c.Name != "install" {
			continue
		}
		q, err := resource.ParseQuantity(c.Resources.Limits["memory"])
		if err != nil {
			t.Fatalf("the installer container's memory limit: %v", err)
		}
		return q.Value()
	}
	t.Fatal("no container named install in the DaemonSet")
	return 0
}

// justUnder pads a JSON document that ends in closing brackets to size
// bytes with spaces before its end: the largest file the installer reads.
func justUnder(head, tail string, size int) string {
	return head + strings.Repeat(" ", size-len(head)-len(tail)) + tail
}

// fill repeats item, separated by commas, as often as fits in size bytes.
func fill(item string, size int) string {
	n := size / (len(item) + 1)
	return strings.TrimSuffix(strings.Repeat(item+",", n), ",")
}

// largestInputs writes into conf the largest configuration the installer
// accepts, in every shape that costs it memory: the primary itself just
// under MaxConfigFile with thousands of plugins (its entry fits), and
// after it, each just under the limit, wide objects, long arrays of
// numbers, deeply nested arrays and objects, long strings, a .conf, the
// CNI 1.3 plugin directory of the primary's network, and many more such
// files. Files over the limit, and FIFOs, are there too: skipped unread.
func largestInputs(t *testing.T, conf string) {
	t.Helper()
	const max = install.MaxConfigFile
	room := 8 << 10 // for fibguard's entry
	plugins := fill(`{"type":"tuning","sysctl":{"net.core.somaxconn":"500"}}`, max-room-200)
	files := map[string]string{
		"10-pods.conflist": `{"cniVersion":"1.0.0","name":"pods","plugins":[{"type":"bridge","bridge":"cni0"},` + plugins + "]}\n",
		"20-wide.conflist": justUnder(`{"cniVersion":"1.0.0","name":"wide","plugins":[{"type":"bridge"}],`+
			fill(`"k":{"a":1,"b":[1,2]}`, max-200), "}", max),
		"21-numbers.conflist": `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge","x":[` + fill("1", max-200) + "]}]}",
		"22-deep-arrays.conflist": justUnder(`{"cniVersion":"1.0.0","name":"d","plugins":[{"type":"bridge","x":`+
			strings.Repeat("[", 9000), strings.Repeat("]", 9000)+"}]}", max),
		"23-deep-objects.conflist": justUnder(`{"cniVersion":"1.0.0","name":"o","plugins":[{"type":"bridge","x":`+
			strings.Repeat(`{"a":`, 9000)+"1", strings.Repeat("}", 9000)+"}]}", max),
		"24-string.conflist": `{"cniVersion":"1.0.0","name":"s","plugins":[{"type":"bridge","x":"` + strings.Repeat("\\u00e9", (max-200)/6) + `"}]}`,
		"25-single.conf":     justUnder(`{"cniVersion":"1.0.0","name":"c","type":"bridge",`+fill(`"k":[1,2,3]`, max-200), "}", max),
		"30-over.conflist":   strings.Repeat(" ", max+1),
		// CNI 1.3: more plugins of network "pods" in conf/pods/*.conf.
		"pods/50-extra.conf": justUnder(`{"type":"portmap",`+fill(`"k":{"a":[1]}`, max-200), "}", max),
	}
	for i := range 40 {
		files[fmt.Sprintf("4%02d-many.conflist", i)] = files["20-wide.conflist"]
	}
	for name, body := range files {
		p := filepath.Join(conf, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// 64 MiB, sparse: the test's own memory stays small (see peakRSS).
	sparse := filepath.Join(conf, "wide", "60-over.conf")
	if err := os.MkdirAll(filepath.Dir(sparse), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sparse, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(sparse, 64<<20); err != nil {
		t.Fatal(err)
	}
	for _, fifo := range []string{"26-fifo.conflist", "wide/55-fifo.conf", "n/55-fifo.conf"} {
		p := filepath.Join(conf, fifo)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mkfifo(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// peakRSS is the child's peak resident set, in bytes, and whether it is
// exact. Go starts a child with vfork, so until its exec the child shares
// the test's memory, and Linux records the test's high-water mark then
// as the child's floor: a figure above the test's own peak is the
// installer's, one below it only a bound.
func peakRSS(t *testing.T, ps *os.ProcessState) (peak int64, exact bool) {
	t.Helper()
	var self syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &self); err != nil {
		t.Fatalf("the test's own rusage: %v", err)
	}
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Fatalf("no rusage for the child: %T", ps.SysUsage())
	}
	return ru.Maxrss << 10, ru.Maxrss > self.Maxrss // Linux reports KiB
}

// TestMemoryWithinLimit runs the real installer — install, watch, the
// readiness and liveness probes, uninstall on SIGTERM — on a conf dir
// holding the largest inputs it accepts, and requires each process's peak
// RSS to stay under half the DaemonSet's memory limit.
func TestMemoryWithinLimit(t *testing.T) {
	if os.Getenv("GOMEMLIMIT") != "" {
		t.Skip("GOMEMLIMIT is set: the installer would not use its own soft limit, which this test measures")
	}
	limit := memoryLimit(t)
	if softMemoryLimit > limit/2 {
		t.Errorf("the installer's soft memory limit, %d MiB, is not well under the DaemonSet's %d MiB", softMemoryLimit>>20, limit>>20)
	}
	n := newNode(t)
	largestInputs(t, n.conf)
	in := start(t, n)
	for _, flag := range []string{"-check", "-live"} {
		bin, err := installerBinary()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, n.args(flag)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", flag, err, out)
		}
		peak, exact := peakRSS(t, cmd.ProcessState)
		checkPeak(t, "fibguard-install "+flag, peak, exact, limit)
	}
	// A change makes the loop reconcile again over all the files.
	if err := os.WriteFile(filepath.Join(n.conf, "99-touch.conf"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-in.done:
		if err != nil {
			t.Fatalf("installer: %v\n%s", err, in.log())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("installer did not stop; log:\n%s", in.log())
	}
	got, err := os.ReadFile(filepath.Join(n.conf, "10-pods.conflist"))
	if err != nil || !bytes.Contains(got, []byte(`"type":"bridge","bridge":"cni0"}`)) || bytes.Contains(got, []byte("fibguard")) {
		t.Errorf("primary after uninstall: %d bytes, %v; want it back without fibguard", len(got), err)
	}
	peak, exact := peakRSS(t, in.cmd.ProcessState)
	checkPeak(t, "fibguard-install (run, uninstall)", peak, exact, limit)
}

func checkPeak(t *testing.T, what string, peak int64, exact bool, limit int64) {
	t.Helper()
	how := "peak RSS"
	if !exact {
		how = "peak RSS at most (the test's own peak, counted in through vfork)"
	}
	t.Logf("%s: %s %.1f MiB (limit %d MiB)", what, how, float64(peak)/(1<<20), limit>>20)
	if peak > limit/2 {
		t.Errorf("%s: peak RSS %d MiB, more than half the DaemonSet's limit of %d MiB", what, peak>>20, limit>>20)
	}
}
