package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fibguard/fibguard/install"
)

// installCollector serves the installer's metrics from the agent's
// endpoint, so that one port of the DaemonSet's pod has them all: the
// installer runs in a container of its own (it writes to the node's CNI
// directories, the agent only reads) and opens no socket, and records its
// state in its heartbeat file (install.Status), which the two containers
// share and which is read at each scrape.
type installCollector struct {
	path      string
	bound     time.Duration
	now       func() time.Time
	ready     *prometheus.Desc
	reinserts *prometheus.Desc
}

// RegisterInstallMetrics registers fibguard_install_ready and
// fibguard_conflist_reinserts_total, read from the installer's heartbeat
// file at path; a pass older than bound (install.LiveBound of the
// installer's resync) counts as not ready.
func RegisterInstallMetrics(reg prometheus.Registerer, path string, bound time.Duration) error {
	return reg.Register(newInstallCollector(path, bound, time.Now))
}

func newInstallCollector(path string, bound time.Duration, now func() time.Time) *installCollector {
	return &installCollector{
		path: path, bound: bound, now: now,
		ready: prometheus.NewDesc("fibguard_install_ready",
			"1 while fibguard-install's last pass ended recently with the binaries in place and fibguard chained into the primary CNI configuration, else 0.",
			nil, nil),
		reinserts: prometheus.NewDesc("fibguard_conflist_reinserts_total",
			"Times fibguard-install chained fibguard again after it had been chained (the primary CNI rewrote its configuration, say), since the installer started.",
			nil, nil),
	}
}

func (c *installCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.ready
	ch <- c.reinserts
}

// Collect reads the heartbeat: unreadable (the installer has not started
// yet, say), it is not ready and has put nothing back.
func (c *installCollector) Collect(ch chan<- prometheus.Metric) {
	st, err := install.ReadStatus(c.path)
	ready := err == nil && st.Installed && c.now().Sub(st.Pass) <= c.bound
	ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, b2f(ready))
	ch <- prometheus.MustNewConstMetric(c.reinserts, prometheus.CounterValue, float64(st.Reinserts))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
