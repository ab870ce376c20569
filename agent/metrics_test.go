package agent

import (
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fibguard/fibguard/checker"
)

// TestMetricsDocumented: every metric the agent registers is in the
// metrics table of docs/agent.md, and every fibguard_ name there exists.
func TestMetricsDocumented(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../docs/agent.md")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
		if !strings.Contains(string(doc), "| `"+f.GetName()) {
			t.Errorf("docs/agent.md: no row for metric %s", f.GetName())
		}
	}
	for line := range strings.Lines(string(doc)) {
		if rest, ok := strings.CutPrefix(line, "| `fibguard_"); ok {
			name := "fibguard_" + rest[:strings.IndexAny(rest, "{`")]
			if !names[name] {
				t.Errorf("docs/agent.md documents %s, which the agent does not have", name)
			}
		}
	}
}

// TestMetricsFollowRounds: the gauges are what the last round found.
func TestMetricsFollowRounds(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	broken := Verdict{Findings: []checker.Finding{{Code: checker.CodeNodeAddress, Severity: checker.SeverityError}}}
	warned := Verdict{Findings: []checker.Finding{{Code: checker.CodeModelKernel, Severity: checker.SeverityWarning}}}
	node := NodeVerdict{Findings: []checker.Finding{{Code: checker.CodeLoopbackNetwork, Severity: checker.SeverityError}}}
	m.Round(Round{Verdicts: []Verdict{broken, warned, {}}, Node: node})
	m.Transition(Transition{Kind: Broken})
	for _, c := range []struct {
		got  prometheus.Collector
		want float64
	}{
		{m.podNetworks.WithLabelValues(stateOK), 2},
		{m.podNetworks.WithLabelValues(stateBroken), 1},
		{m.findings.WithLabelValues("FG002"), 1},
		{m.findings.WithLabelValues("FG040"), 1},
		{m.findings.WithLabelValues("FG050"), 1},
		{m.findings.WithLabelValues("FG001"), 0},
		{m.nodeBroken, 1},
		{m.rechecks, 1},
		{m.transitions.WithLabelValues("broken"), 1},
	} {
		if got := testutil.ToFloat64(c.got); got != c.want {
			t.Errorf("%v = %v, want %v", c.got, got, c.want)
		}
	}
	m.Round(Round{Verdicts: []Verdict{{}}})
	if got := testutil.ToFloat64(m.podNetworks.WithLabelValues(stateBroken)); got != 0 {
		t.Errorf("broken after a healthy round: %v", got)
	}
	if got := testutil.ToFloat64(m.nodeBroken); got != 0 {
		t.Errorf("node broken after a healthy round: %v", got)
	}
}
