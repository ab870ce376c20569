package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fibguard/fibguard/fib/live"
	"github.com/fibguard/fibguard/internal/nstest"
)

// Sizes of the benchmarks: kubelet's default pod limit, and a node that
// holds a full table of routes (a route reflector's, say).
const (
	benchPods   = 110
	benchRoutes = 100_000
)

// benchNode builds a host namespace like a node's: a bridge cni0 on
// 10.244.0.0/24 with pods, an uplink, and routes extra routes in main
// through it; and a result cache of pods attachments of that bridge, as
// libcni writes it, with fibguard chained.
func benchNode(b *testing.B, pods, routes int) (ns *nstest.NS, results string) {
	b.Helper()
	ns = nstest.NewWithLoUp(b)
	lines := []string{
		"link add cni0 type bridge", "link set cni0 up", "addr add 10.244.0.1/24 dev cni0",
		"link add up0 type veth peer name up1", "link set up0 up", "link set up1 up", "addr add 10.99.0.1/16 dev up0",
	}
	for i := range routes {
		lines = append(lines, fmt.Sprintf("route add %d.%d.%d.0/24 via 10.99.0.2", 11+i>>16, i>>8&0xff, i&0xff))
	}
	cmd := exec.Command("ip", "-n", ns.Name(), "-force", "-batch", "-")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("ip -batch: %v: %s", err, out)
	}
	results = b.TempDir()
	for i := range pods {
		writeBenchAttachment(b, results, i)
	}
	return ns, results
}

// writeBenchAttachment writes the cache file of pod i (10.244.0.i+2).
func writeBenchAttachment(b *testing.B, dir string, i int) {
	b.Helper()
	id := fmt.Sprintf("c%03d", i)
	result := fmt.Sprintf(`{"cniVersion":"1.0.0","interfaces":[{"name":"cni0"},{"name":"veth%03d"},{"name":"eth0","sandbox":"/var/run/netns/%s"}],`+
		`"ips":[{"address":"10.244.0.%d/24","gateway":"10.244.0.1","interface":2}]}`, i, id, i+2)
	c := cacheFile{
		Kind: cacheKind, ContainerID: id, IfName: "eth0", NetworkName: "pods",
		Config:  []byte(`{"cniVersion":"1.0.0","name":"pods","plugins":[{"type":"bridge","bridge":"cni0"},{"type":"fibguard"}]}`),
		CNIArgs: [][2]string{{"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", "pod-" + id}, {"K8S_POD_UID", "uid-" + id}},
		Result:  json.RawMessage(result),
	}
	data, err := json.Marshal(c)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pods-"+id+"-eth0"), data, 0o600); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRound measures one round of re-checks of 110 attachments on a
// node with 100,000 routes, after one route change:
//   - incremental is what the agent does: the cache files are unchanged,
//     so none is read again; the host is read for the pod IPs (LoadFor);
//   - full is the baseline, a re-check from nothing: every cache file read
//     and parsed again.
func BenchmarkRound(b *testing.B) {
	ns, results := benchNode(b, benchPods, benchRoutes)
	n, err := live.Open(ns.Path())
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	for _, mode := range []string{"incremental", "full"} {
		b.Run(mode, func(b *testing.B) {
			c := newCache(results)
			for b.Loop() {
				if mode == "full" {
					c = newCache(results)
				}
				atts, errs := c.read()
				if len(errs) > 0 || len(atts) != benchPods {
					b.Fatalf("%d attachments, errors %v", len(atts), errs)
				}
				vs, err := CheckAll(n, atts)
				if err != nil {
					b.Fatal(err)
				}
				for _, v := range vs {
					if v.Broken() {
						b.Fatalf("%s broken: %v", v.Attachment.File, v.Findings)
					}
				}
			}
		})
	}
}

// BenchmarkStorm measures how a storm of route changes is coalesced: the
// agent runs on a node with 110 pods, and 10,000 routes change within a
// second, in 20 batches of 500 every 50 ms, as a routing daemon
// converging would change them. It reports the rounds the agent ran for
// one storm (rounds/storm).
func BenchmarkStorm(b *testing.B) {
	ns, results := benchNode(b, benchPods, 0)
	var rounds atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{ResultsDir: results, Netns: ns.Path(), Sink: countRounds{&rounds}})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	waitQuiet(&rounds)
	var total int64
	storm := 0
	for b.Loop() {
		before := rounds.Load()
		tick := time.NewTicker(50 * time.Millisecond)
		for batch := range 20 {
			var lines []string
			for i := range 500 {
				lines = append(lines, fmt.Sprintf("route replace %d.%d.%d.%d/32 via 10.99.0.2", 100+storm%100, batch, i>>8, i&0xff))
			}
			cmd := exec.Command("ip", "-n", ns.Name(), "-batch", "-")
			cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("ip -batch: %v: %s", err, out)
			}
			<-tick.C
		}
		tick.Stop()
		storm++
		waitQuiet(&rounds)
		total += rounds.Load() - before
	}
	b.ReportMetric(float64(total)/float64(b.N), "rounds/storm")
}

// waitQuiet waits until no round has run for 1.5 s (longer than
// DefaultMaxDelay).
func waitQuiet(rounds *atomic.Int64) {
	last := rounds.Load()
	for {
		time.Sleep(1500 * time.Millisecond)
		now := rounds.Load()
		if now == last && now > 0 {
			return
		}
		last = now
	}
}

// countRounds is a Sink that counts rounds.
type countRounds struct{ n *atomic.Int64 }

func (c countRounds) Transition(Transition)         {}
func (c countRounds) NodeTransition(NodeTransition) {}
func (c countRounds) Round(Round)                   { c.n.Add(1) }

// BenchmarkAgentProcess runs the real fibguard-agent on a node with 110
// pods and 100,000 routes and reports, per run, its peak resident memory
// after the first rounds and a route change (peak-RSS-MiB, the kernel's
// VmHWM), and the CPU it uses while the node is idle, over 10 seconds
// (idle-CPU-%, of one core).
func BenchmarkAgentProcess(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "fibguard-agent")
	build := exec.Command("go", "build", "-o", bin, "github.com/fibguard/fibguard/cmd/fibguard-agent")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	ns, results := benchNode(b, benchPods, benchRoutes)
	for b.Loop() {
		rss, cpu := measureAgent(b, bin, ns, results)
		b.ReportMetric(rss, "peak-RSS-MiB")
		b.ReportMetric(cpu, "idle-CPU-%")
	}
}

// measureAgent runs the agent once and returns its peak RSS in MiB and its
// idle CPU use in percent of a core.
func measureAgent(b *testing.B, bin string, ns *nstest.NS, results string) (rssMiB, cpuPercent float64) {
	b.Helper()
	cmd := exec.Command(bin, "-netns", ns.Path(), "-results-dir", results, "-conf-dir", "", "-kubeconfig", "",
		"-cluster-kubeconfig", "none", "-node-status-file", "", "-metrics-bind-address", "")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait() // killed: its error says only that
	}()
	// The first round runs at start; then one change makes another.
	time.Sleep(2 * time.Second)
	if _, err := ns.IP("route", "add", "10.245.0.0/24", "via", "10.99.0.2"); err != nil {
		b.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil || !strings.Contains(string(status), "VmHWM:") {
		b.Fatalf("the agent is not running (%v); its log:\n%s", err, out.String())
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb float64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%f kB", &kb); err != nil {
				b.Fatal(err)
			}
			rssMiB = kb / 1024
		}
	}
	before := cpuTime(b, cmd.Process.Pid)
	const idle = 10 * time.Second
	time.Sleep(idle)
	return rssMiB, 100 * (cpuTime(b, cmd.Process.Pid) - before).Seconds() / idle.Seconds()
}

// cpuTime is the user and system time a process used so far.
func cpuTime(b *testing.B, pid int) time.Duration {
	b.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name, which is in parentheses.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	var utime, stime int64
	if _, err := fmt.Sscan(fields[11], &utime); err != nil {
		b.Fatal(err)
	}
	if _, err := fmt.Sscan(fields[12], &stime); err != nil {
		b.Fatal(err)
	}
	const clockTicks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clockTicks
}
