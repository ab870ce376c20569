package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fibguard/fibguard/checker"
	"github.com/fibguard/fibguard/install"
)

// TestMetricsDocumented: every metric the agent registers is in the
// metrics table of docs/agent.md, and every fibguard_ name there exists.
func TestMetricsDocumented(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if err := RegisterInstallMetrics(reg, filepath.Join(t.TempDir(), "heartbeat"), time.Minute); err != nil {
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

// TestInstallMetrics: the installer's metrics follow its heartbeat file,
// read at each scrape; a missing, stale or garbled file is not ready.
func TestInstallMetrics(t *testing.T) {
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	const bound = 96 * time.Second
	for _, tc := range []struct {
		name      string
		content   any // nil: no file; a string: written as is
		ready     float64
		reinserts float64
	}{
		{"no file yet", nil, 0, 0},
		{"installed", install.Status{Pass: now.Add(-time.Second), Installed: true, Reinserts: 3}, 1, 3},
		{"installed, stale", install.Status{Pass: now.Add(-bound - time.Second), Installed: true, Reinserts: 3}, 0, 3},
		{"not installed", install.Status{Pass: now, Error: "no valid CNI configuration"}, 0, 0},
		{"garbled", "{\"pass\":", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "heartbeat")
			switch c := tc.content.(type) {
			case string:
				writeFile(t, path, []byte(c))
			case install.Status:
				b, err := json.Marshal(c)
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, path, b)
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(newInstallCollector(path, bound, func() time.Time { return now }))
			for name, want := range map[string]float64{"fibguard_install_ready": tc.ready, "fibguard_conflist_reinserts_total": tc.reinserts} {
				if got := gathered(t, reg, name); got != want {
					t.Errorf("%s = %v, want %v", name, got, want)
				}
			}
		})
	}
}

// gathered is the value of the one series of the metric name in reg.
func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name || len(f.GetMetric()) != 1 {
			continue
		}
		m := f.GetMetric()[0]
		if g := m.GetGauge(); g != nil {
			return g.GetValue()
		}
		return m.GetCounter().GetValue()
	}
	t.Fatalf("no single series of %s", name)
	return 0
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
