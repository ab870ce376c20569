package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fibguard/fibguard/internal/phase"
)

// BenchmarkADDPhases accounts for every millisecond of one accepted ADD
// of fibguard with its defaults, exec'd as the runtime execs the last
// plugin of a bridge chain (the stdin a runtime gives it) on a host with
// 1,000 routes: the plugin marks the end of each phase (package phase,
// FIBGUARD_PHASES), and the benchmark times the process around them. It
// reports the median of each phase, in order:
//
//	start                 exec, the Go runtime, every package's initialisation
//	skel                  skel: the CNI environment, stdin read
//	config                the configuration and prevResult parsed and validated
//	log-open              the logger set up (standard error by default)
//	netns-check           CNI_NETNS checked
//	host-model            the host namespace read (fib/live.LoadFor)
//	pod-model             the pod namespace read (fib/live.Load)
//	checks                every check, the kernel's route queries included
//	log-record            the record of the accepted pod
//	result                the prevResult printed
//	exit                  the process's end, as the benchmark sees it
//
// and kernel-route-queries, the part of checks spent in RTM_GETROUTE, and
// total, the whole exec; and the same of the floor with the same stdin
// (floorplugin, the emptiest Go plugin: floor-start, floor-result — its
// whole work —, floor-exit, floor-total).
//
//	go test -run '^$' -bench BenchmarkADDPhases -benchtime 300x ./test/integration/
func BenchmarkADDPhases(b *testing.B) {
	needFibguard(b)
	floor, err := floorPlugin()
	if err != nil {
		b.Fatal(err)
	}
	w := newWorld(b, benchHost(1_000)...)
	p := w.newPod()
	net := bridgeNet("10.88.0.0/24")
	res, err := w.add(w.load(net), p)
	if err != nil {
		b.Fatalf("ADD of the bare chain: %v", err)
	}
	stdin, err := chainedStdin(w, net.withEntry(map[string]any{"type": "fibguard"}), res)
	if err != nil {
		b.Fatal(err)
	}
	marks := filepath.Join(b.TempDir(), "phases.jsonl")
	floorMarks := filepath.Join(b.TempDir(), "floor-phases.jsonl")
	env := []string{
		"CNI_COMMAND=ADD", "CNI_CONTAINERID=" + p.rt.ContainerID, "CNI_NETNS=" + p.ns.Path(),
		"CNI_IFNAME=eth0", "CNI_PATH=" + setup.fgDir, "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0",
	}
	fibguard := filepath.Join(setup.fgDir, "fibguard")
	floorBin := filepath.Join(setup.fgDir, floor)
	var runs, floorRuns [][2]int64 // each process's start and end (Unix ns)
	b.ResetTimer()
	for i := range b.N {
		for k := range 2 {
			if (i+k)%2 == 0 {
				start, end, err := w.execTimed(fibguard, append(env, phase.Env+"="+marks), stdin)
				if err != nil {
					b.Fatalf("fibguard ADD: %v", err)
				}
				runs = append(runs, [2]int64{start, end})
				continue
			}
			start, end, err := w.execTimed(floorBin, append(env, phase.Env+"="+floorMarks), stdin)
			if err != nil {
				b.Fatalf("floor ADD: %v", err)
			}
			floorRuns = append(floorRuns, [2]int64{start, end})
		}
	}
	b.StopTimer()
	phases, err := readPhases(marks, runs)
	if err != nil {
		b.Fatal(err)
	}
	floorPhases, err := readPhases(floorMarks, floorRuns)
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range phaseOrder(phases) {
		b.ReportMetric(float64(median(phases[name]).Nanoseconds()), name+"-ns")
	}
	for _, name := range phaseOrder(floorPhases) {
		b.ReportMetric(float64(median(floorPhases[name]).Nanoseconds()), "floor-"+name+"-ns")
	}
}

// execTimed runs bin in the world's host namespace and returns when the
// process was started and when it ended, as Unix nanoseconds.
func (w *world) execTimed(bin string, env []string, stdin []byte) (start, end int64, err error) {
	err = w.inHost(func(ctx context.Context) error {
		cmd := exec.CommandContext(ctx, bin)
		cmd.Env = env
		cmd.Stdin = bytes.NewReader(stdin)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start = time.Now().UnixNano()
		runErr := cmd.Run()
		end = time.Now().UnixNano()
		if runErr != nil {
			return fmt.Errorf("%w: %s%s", runErr, strings.TrimSpace(stdout.String()), strings.TrimSpace(stderr.String()))
		}
		return nil
	})
	return start, end, err
}

// phaseRecord is one line of the marks file.
type phaseRecord struct {
	Marks []phase.Mark             `json:"marks"`
	Spent map[string]time.Duration `json:"spent"`
}

// readPhases reads one line of marks per run and returns the durations of
// each phase: from the process's start to the first mark, between marks,
// from the last mark to the process's end ("exit"), and the totals spent
// in pieces ("kernel route queries"), named with dashes; "total" is the
// whole exec.
func readPhases(path string, runs [][2]int64) (map[string][]time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string][]time.Duration{}
	sc := bufio.NewScanner(f)
	i := 0
	for ; sc.Scan(); i++ {
		if i >= len(runs) {
			return nil, fmt.Errorf("%s: more lines than the %d runs", path, len(runs))
		}
		var rec phaseRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, i+1, err)
		}
		if len(rec.Marks) == 0 {
			return nil, fmt.Errorf("%s line %d: no marks", path, i+1)
		}
		prev := runs[i][0]
		for _, m := range rec.Marks {
			out[dashed(m.Name)] = append(out[dashed(m.Name)], time.Duration(m.At-prev))
			prev = m.At
		}
		out["exit"] = append(out["exit"], time.Duration(runs[i][1]-prev))
		out["total"] = append(out["total"], time.Duration(runs[i][1]-runs[i][0]))
		for name, d := range rec.Spent {
			out[dashed(name)] = append(out[dashed(name)], d)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if i != len(runs) {
		return nil, fmt.Errorf("%s: %d lines for %d runs", path, i, len(runs))
	}
	return out, nil
}

func dashed(s string) string { return strings.ReplaceAll(s, " ", "-") }

// phaseOrder lists the phases in the order a run goes through them, then
// exit, the pieces and the total.
func phaseOrder(phases map[string][]time.Duration) []string {
	order := []string{"start", "skel", "config", "log-open", "netns-check", "host-model", "pod-model", "checks", "log-record", "result", "exit", "kernel-route-queries", "total"}
	var out []string
	for _, name := range order {
		if _, ok := phases[name]; ok {
			out = append(out, name)
		}
	}
	return out
}
