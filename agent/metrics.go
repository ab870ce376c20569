package agent

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fibguard/fibguard/checker"
)

// Metrics is a Sink that keeps the agent's Prometheus metrics. Every name
// is documented in docs/agent.md; TestMetricsDocumented holds the two
// together.
type Metrics struct {
	podNetworks *prometheus.GaugeVec
	findings    *prometheus.GaugeVec
	rechecks    prometheus.Counter
	duration    prometheus.Histogram
	transitions *prometheus.CounterVec
	cacheErrors prometheus.Gauge
	nodeBroken  prometheus.Gauge
}

// Pod network states, the values of the state label.
const (
	stateOK     = "ok"
	stateBroken = "broken"
)

// NewMetrics creates the agent's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		podNetworks: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fibguard_pod_networks",
			Help: "Pod network attachments on this node that fibguard checks, by state at the last re-check: ok, or broken (an error finding).",
		}, []string{"state"}),
		findings: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fibguard_findings",
			Help: "Findings of the last re-check on this node, by check code (docs/checks.md), warnings included.",
		}, []string{"code"}),
		rechecks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fibguard_rechecks_total",
			Help: "Rounds of re-checks of every pod network attachment on this node.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fibguard_recheck_duration_seconds",
			Help:    "Time of a round of re-checks: reading changed cache files, the host's network, and the checks.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fibguard_pod_network_transitions_total",
			Help: "Pod networks (of pods, and of the node as a whole) that changed state after setup, by kind: broken, restored, still-broken (other reasons).",
		}, []string{"kind"}),
		cacheErrors: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fibguard_result_cache_errors",
			Help: "Files of the CNI result cache that could not be read at the last re-check.",
		}),
		nodeBroken: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fibguard_node_network_broken",
			Help: "1 while a node-wide check (FG050-FG053) finds an error in this node's pod networks, else 0.",
		}),
	}
	for _, c := range []prometheus.Collector{m.podNetworks, m.findings, m.rechecks, m.duration, m.transitions, m.cacheErrors, m.nodeBroken} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Every series exists from the start, at zero, so that a query or an
	// alert on it does not depend on the first break.
	for _, s := range []string{stateOK, stateBroken} {
		m.podNetworks.WithLabelValues(s)
	}
	for _, k := range []Kind{Broken, Restored, StillBroken} {
		m.transitions.WithLabelValues(string(k))
	}
	for _, c := range reportedCodes() {
		m.findings.WithLabelValues(string(c))
	}
	return m, nil
}

// reportedCodes are the codes of fibguard_findings: the re-checked
// pod checks and the node-wide ones.
func reportedCodes() []checker.Code {
	return append(slices.Clone(HostCodes), NodeCodes...)
}

// NodeTransition counts the node's change of state with the pods'.
func (m *Metrics) NodeTransition(t NodeTransition) {
	m.transitions.WithLabelValues(string(t.Kind)).Inc()
}

// Transition counts a pod network's change of state.
func (m *Metrics) Transition(t Transition) {
	m.transitions.WithLabelValues(string(t.Kind)).Inc()
}

// Round sets the gauges to what the round found.
func (m *Metrics) Round(r Round) {
	m.rechecks.Inc()
	m.duration.Observe(r.Duration.Seconds())
	m.cacheErrors.Set(float64(len(r.Errors)))
	var ok, broken int
	byCode := map[checker.Code]int{}
	for _, v := range r.Verdicts {
		if v.Broken() {
			broken++
		} else {
			ok++
		}
		for _, f := range v.Findings {
			byCode[f.Code]++
		}
	}
	for _, f := range r.Node.Findings {
		byCode[f.Code]++
	}
	nodeBroken := 0.0
	if (Verdict{Findings: r.Node.Findings}).Broken() {
		nodeBroken = 1
	}
	m.nodeBroken.Set(nodeBroken)
	m.podNetworks.WithLabelValues(stateOK).Set(float64(ok))
	m.podNetworks.WithLabelValues(stateBroken).Set(float64(broken))
	for _, c := range reportedCodes() {
		m.findings.WithLabelValues(string(c)).Set(float64(byCode[c]))
	}
}
