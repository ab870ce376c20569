package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fibguard/fibguard/agent"
	"github.com/fibguard/fibguard/checker"
)

// agentWait bounds how long a change may take to be reported: the agent
// waits for the node to be quiet for 100 ms, at most a second.
const agentWait = 10 * time.Second

// TestAgentSeesBreaksAfterSetup: two pods are set up through the real
// chain with fibguard; the agent, watching the host namespace and libcni's
// result cache, reports nothing while the node is healthy. Then the node
// changes under the running pods, and the agent reports each change of
// the first pod's state with what changed on the node; the second pod,
// untouched, never changes state:
//   - the pod IP becomes an address of the host (FG002), then goes;
//   - a more specific route through the uplink steals it (FG003), then goes;
//   - a pod torn down (DEL) is forgotten without a report.
func TestAgentSeesBreaksAfterSetup(t *testing.T) {
	needFibguard(t)
	w := newWorld(t,
		"link add up0 type veth peer name up1",
		"link set up0 up",
		"link set up1 up",
		"addr add 10.99.0.1/24 dev up0",
	)
	list := w.load(bridgeNet("10.88.0.0/24").withFibguard(nil))
	var ips []string
	for range 2 {
		res, err := w.add(list, w.newPod())
		if err != nil {
			t.Fatalf("ADD: %v", err)
		}
		ips = append(ips, res.IPs[0].Address.IP.String())
	}
	sink := startAgent(t, w)
	sink.waitRound(t, func(r agent.Round) bool { return len(r.Verdicts) == 2 })
	if ts := sink.transitions(); len(ts) != 0 {
		t.Fatalf("healthy node: transitions %v", ts)
	}

	steps := []struct {
		cmd        string
		kind       agent.Kind
		code       checker.Code // for a break
		changeText string
	}{
		{"addr add " + ips[0] + "/32 dev up0", agent.Broken, checker.CodeNodeAddress, "address " + ips[0] + "/32 added on up0"},
		{"addr del " + ips[0] + "/32 dev up0", agent.Restored, "", "address " + ips[0] + "/32 removed from up0"},
		{"route add " + ips[0] + "/32 via 10.99.0.2 dev up0", agent.Broken, checker.CodeShadowed, "route " + ips[0] + "/32 via 10.99.0.2 dev up0"},
		{"route del " + ips[0] + "/32 via 10.99.0.2 dev up0", agent.Restored, "", "route " + ips[0] + "/32 via 10.99.0.2 dev up0"},
	}
	for i, step := range steps {
		if _, err := w.host.IP(strings.Fields(step.cmd)...); err != nil {
			t.Fatalf("ip %s: %v", step.cmd, err)
		}
		got := sink.waitTransition(t, i+1)
		v := got.Verdict
		if got.Kind != step.kind || !strings.HasPrefix(v.Attachment.Pod.Name, "fgtest-") ||
			v.Attachment.Config.Result.IPs[0].Address.IP.String() != ips[0] {
			t.Fatalf("after `ip %s`: transition %s of %s (%v), want %s of the pod at %s", step.cmd, got.Kind, v.Attachment.Pod, v.Codes(), step.kind, ips[0])
		}
		if step.code != "" && !slices.Contains(v.Codes(), step.code) {
			t.Errorf("after `ip %s`: codes %v, want %s", step.cmd, v.Codes(), step.code)
		}
		if !slices.ContainsFunc(got.Changes, func(c string) bool { return strings.Contains(c, step.changeText) }) {
			t.Errorf("after `ip %s`: changes %q, want one containing %q", step.cmd, got.Changes, step.changeText)
		}
		t.Logf("after `ip %s`: %s %v, changes %q", step.cmd, got.Kind, v.Codes(), got.Changes)
	}
	if n := len(sink.transitions()); n != len(steps) {
		t.Errorf("%d transitions, want %d (the second pod must not change state): %v", n, len(steps), sink.transitions())
	}
}

// startAgent runs the agent on the world's host namespace and result
// cache until the end of the test.
func startAgent(t *testing.T, w *world) *recordingSink {
	t.Helper()
	sink := &recordingSink{changed: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agent.Run(ctx, agent.Config{
			ResultsDir: filepath.Join(w.cacheDir, "results"),
			Netns:      w.host.Path(),
			Sink:       sink,
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent: %v", err)
			}
		case <-time.After(agentWait):
			t.Error("the agent did not stop within 10 s of its context")
		}
	})
	return sink
}

// recordingSink keeps what the agent reports.
type recordingSink struct {
	mu      sync.Mutex
	ts      []agent.Transition
	rounds  []agent.Round
	changed chan struct{}
}

func (s *recordingSink) Transition(tr agent.Transition) {
	s.mu.Lock()
	s.ts = append(s.ts, tr)
	s.mu.Unlock()
}

func (s *recordingSink) Round(r agent.Round) {
	s.mu.Lock()
	s.rounds = append(s.rounds, r)
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *recordingSink) transitions() []agent.Transition {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ts)
}

// waitRound waits for a round that satisfies ok.
func (s *recordingSink) waitRound(t *testing.T, ok func(agent.Round) bool) {
	t.Helper()
	s.wait(t, "a round", func() bool {
		return slices.ContainsFunc(s.rounds, ok)
	})
}

// waitTransition waits for the n-th transition and returns it.
func (s *recordingSink) waitTransition(t *testing.T, n int) agent.Transition {
	t.Helper()
	s.wait(t, fmt.Sprintf("transition %d", n), func() bool { return len(s.ts) >= n })
	return s.transitions()[n-1]
}

func (s *recordingSink) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(agentWait)
	for {
		s.mu.Lock()
		ok := cond()
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-s.changed:
		case <-deadline:
			t.Fatalf("no %s within %v; transitions so far: %v", what, agentWait, s.transitions())
		}
	}
}
