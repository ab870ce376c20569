package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/fibguard/fibguard/checker"
	"github.com/fibguard/fibguard/internal/nodestatus"
	"github.com/fibguard/fibguard/podevent"
)

// TestEventProcessesDoNotOutliveADD: an event binary that leaves processes
// behind — a setsid child, a double fork, a child that ignores SIGTERM and
// keeps stdout open, one in a PID namespace of its own, a loop starting
// setsid children — whether it exits at once or hangs past eventTimeout,
// leaves nothing running once the rejected ADD has answered, and the ADD
// answers within eventTimeout and a margin, with its verdict.
func TestEventProcessesDoNotOutliveADD(t *testing.T) {
	needFibguard(t)
	for _, tt := range []struct{ name, end string }{
		{"exits at once", "exit 0"},
		{"hangs past the deadline", "sleep 1000"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tag := strconv.Itoa(os.Getpid()) + strconv.FormatUint(seq.Add(1), 10)
			dir := fakeEventDir(t, tag, tt.end)
			w := newWorld(t)
			w.cni = libcni.NewCNIConfigWithCacheDir([]string{dir, setup.pluginDir}, w.cacheDir, &invoke.DefaultExec{
				RawExec: &invoke.RawExec{Stderr: os.Stderr}, PluginDecoder: version.PluginDecoder{},
			})
			list := w.load(bridgeNet("127.16.0.0/16").withFibguard(map[string]any{
				"kubeconfig": filepath.Join(dir, "kubeconfig"), "eventTimeout": "1s", "nodeName": "node-1",
			}))
			start := time.Now()
			_, err := w.add(list, w.newPod())
			took := time.Since(start)
			assertRejected(t, err, checker.CodeHostLoopback)
			if took > 5*time.Second {
				t.Errorf("ADD took %v with eventTimeout 1s", took)
			}
			if left := processesTagged(t, tag); len(left) > 0 {
				t.Fatalf("processes started for the Event still run after ADD answered: %v", left)
			}
			if _, err := os.Stat(filepath.Join(dir, "ran")); err != nil {
				t.Fatalf("the fake event binary did not run: %v", err)
			}
			t.Logf("ADD answered after %v; nothing of the event binary's left", took.Round(time.Millisecond))
		})
	}
}

// fakeEventDir makes a plugin directory with fibguard and a fake event
// binary that starts escaping processes, each running "sleep <tag>N",
// then ends with end.
func fakeEventDir(t *testing.T, tag, end string) string {
	t.Helper()
	dir := t.TempDir()
	copyFile(t, filepath.Join(setup.fgDir, "fibguard"), filepath.Join(dir, "fibguard"))
	script := fmt.Sprintf(`#!/bin/sh
touch %[2]s/ran
setsid sleep %[1]s1 &
( sleep %[1]s2 & ) &
sh -c 'trap "" TERM; exec sleep %[1]s3' &
sleep %[1]s4 &
unshare --pid --fork sleep %[1]s5 &
sh -c 'while :; do setsid sleep %[1]s6 & sleep 0.01; done' &
cat >/dev/null
%[3]s
`, tag, dir, end)
	if err := os.WriteFile(filepath.Join(dir, podevent.EventBinary), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kubeconfig"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, pid := range processesTagged(t, tag) {
			if p, err := os.FindProcess(pid); err == nil {
				_ = p.Kill() // a failed test's leftovers
			}
		}
	})
	return dir
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = in.Close() }() // read-only
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// processesTagged lists the processes whose command line holds "sleep
// <tag>", zombies aside.
func processesTagged(t *testing.T, tag string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(cmd) == 0 {
			continue // gone, or a zombie
		}
		if strings.Contains(strings.ReplaceAll(string(cmd), "\x00", " "), "sleep "+tag) {
			out = append(out, pid)
		}
	}
	return out
}

// TestStatusFromNodeAgent: STATUS through libcni (cniVersion 1.1.0, as
// containerd 2.1 and CRI-O 1.36 call it) with "nodeStatus": "on" fails
// with ErrPluginNotAvailable and the agent's reason while the agent's
// verdict says the node is not ready, and passes when it is ready, when
// there is none, and when it is stale; without nodeStatus it passes
// whatever the verdict.
func TestStatusFromNodeAgent(t *testing.T) {
	needFibguard(t)
	w := newWorld(t)
	path := filepath.Join(t.TempDir(), "node-status.json")
	on := w.load(bridgeNet("10.88.0.0/24").withVersion("1.1.0").withFibguard(map[string]any{"nodeStatus": "on", "nodeStatusFile": path}))
	off := w.load(bridgeNet("10.88.0.0/24").withVersion("1.1.0").withFibguard(map[string]any{"nodeStatusFile": path}))
	status := func(list *libcni.NetworkConfigList) error {
		return w.inHost(func(ctx context.Context) error { return w.cni.GetStatusNetworkList(ctx, list) })
	}
	now := time.Now()
	for _, tt := range []struct {
		name    string
		verdict *nodestatus.Status
		want    string // "" passes
	}{
		{"no verdict", nil, ""},
		{"ready", &nodestatus.Status{Time: now, Ready: true}, ""},
		{"not ready", &nodestatus.Status{Time: now, Reason: "FG050 pod network 127.16.0.0/16 …"}, "the node's pod network is untenable: FG050"},
		{"not ready, but stale", &nodestatus.Status{Time: now.Add(-time.Hour), Reason: "FG050 …"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_ = os.Remove(path) // absent already is fine
			if tt.verdict != nil {
				if err := nodestatus.Write(path, *tt.verdict); err != nil {
					t.Fatal(err)
				}
			}
			err := status(on)
			if tt.want == "" && err != nil {
				t.Fatalf("STATUS: %v, want success", err)
			}
			if tt.want != "" {
				var e *types.Error
				if !errors.As(err, &e) || e.Code != types.ErrPluginNotAvailable || !strings.Contains(e.Msg, tt.want) {
					t.Fatalf("STATUS: %v, want code %d containing %q", err, types.ErrPluginNotAvailable, tt.want)
				}
			}
			if err := status(off); err != nil {
				t.Errorf("STATUS without nodeStatus: %v, want success", err)
			}
		})
	}
}
