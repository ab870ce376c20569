// Command fibguard-agent runs beside the installer in fibguard's DaemonSet
// on every node: it keeps re-checking every pod network of the node after
// setup, as the node changes, and reports a pod whose network breaks (and
// is restored) as Events on the pod, in Prometheus metrics and in its log.
// All logic is in package agent.
//
// Every flag can also be set by the environment variable in brackets in
// -help; a flag on the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/fibguard/fibguard/agent"
	"github.com/fibguard/fibguard/agent/cluster"
	"github.com/fibguard/fibguard/install"
	"github.com/fibguard/fibguard/internal/envflag"
	"github.com/fibguard/fibguard/internal/nodestatus"
	"github.com/fibguard/fibguard/internal/version"
	"github.com/fibguard/fibguard/podevent/kube"
)

// options are the command's settings.
type options struct {
	agent   agent.Config
	metrics string // listen address of /metrics and /healthz; "" serves none
	// kubeconfig is the kubeconfig to record Events and watch the Node
	// objects with: "" for the pod's service account, "none" for neither.
	kubeconfig string
	node       string
	// status is the file of the node's verdict for the plugin's STATUS;
	// "" writes none.
	status string
	// heartbeat is the installer's heartbeat file, for its metrics; ""
	// serves none.
	heartbeat string
}

// noAPI is the -kubeconfig value that turns the API off.
const noAPI = "none"

func main() {
	version.ExitIfRequested("fibguard-agent", os.Args[1:])
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	opts, err := parse(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fibguard-agent:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, opts, log); err != nil {
		log.Error("fibguard-agent failed", "err", err)
		os.Exit(1)
	}
}

// parse reads the flags and the environment.
func parse(args []string, getenv func(string) string) (options, error) {
	fs := envflag.New("fibguard-agent", getenv)
	results := fs.String("results-dir", "FIBGUARD_RESULTS_DIR", "/var/lib/cni/results",
		"libcni's result cache of the node, as mounted (read only)")
	netns := fs.String("netns", "FIBGUARD_NETNS", "", `the host's network namespace; "" is the agent's own (hostNetwork)`)
	confDir := fs.String("conf-dir", "CNI_CONF_DIR", "/etc/cni/net.d",
		`the node's CNI configuration directory, as mounted (read only): its primary configuration's IPAM ranges are pod networks of the node; "" reads none`)
	metrics := fs.String("metrics-bind-address", "FIBGUARD_METRICS_BIND_ADDRESS", ":9743",
		`where to serve /metrics and /healthz; "" serves neither`)
	kubeconfig := fs.String("kubeconfig", "KUBECONFIG", "",
		`the kubeconfig to record Events (events create, patch) and watch the Node objects (nodes list, watch) with; "" is the pod's service account; "none" does neither`)
	node := fs.String("node-name", "NODE_NAME", "", "this node's name, the Events' reporting instance")
	heartbeat := fs.String("install-heartbeat-file", "FIBGUARD_INSTALL_HEARTBEAT_FILE", "/run/fibguard-install/heartbeat",
		`fibguard-install's heartbeat file, as mounted (read only), for its metrics (fibguard_install_ready, fibguard_conflist_reinserts_total); "" serves neither`)
	status := fs.String("node-status-file", "FIBGUARD_NODE_STATUS_FILE", nodestatus.DefaultPath,
		`where to write the node's verdict for the plugin's STATUS ("nodeStatus": "on"); "" writes none`)
	debounce := fs.Duration("debounce", "FIBGUARD_DEBOUNCE", agent.DefaultDebounce, "how long the node must be quiet after a change before a re-check")
	maxDelay := fs.Duration("max-delay", "FIBGUARD_MAX_DELAY", agent.DefaultMaxDelay, "the longest a change waits for its re-check, however busy the node")
	resync := fs.Duration("resync", "FIBGUARD_RESYNC", agent.DefaultResync,
		"the longest time between two re-checks (sysctls such as route_localnet are not announced)")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if *kubeconfig != noAPI && *node == "" {
		return options{}, errors.New(`-node-name (NODE_NAME) is required to record Events and to find this node's Node object; -kubeconfig none does neither`)
	}
	return options{
		heartbeat: *heartbeat,
		status:    *status,
		agent: agent.Config{
			ResultsDir: *results, Netns: *netns, ConfDir: *confDir,
			Debounce: *debounce, MaxDelay: *maxDelay, Resync: *resync,
		},
		metrics:    *metrics,
		kubeconfig: *kubeconfig,
		node:       *node,
	}, nil
}

// run serves the metrics and runs the agent until ctx is done.
func run(ctx context.Context, opts options, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := agent.NewMetrics(reg)
	if err != nil {
		return err
	}
	h := &health{maxAge: 3 * opts.agent.Resync}
	sinks := agent.Sinks{m, &agent.LogSink{Log: log}, h}
	if opts.status != "" {
		sinks = append(sinks, &agent.StatusFile{Path: opts.status, Log: log})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cfg := opts.agent
	if opts.kubeconfig != noAPI {
		rc, err := clientConfig(opts.kubeconfig)
		if err != nil {
			return err
		}
		rec := &kube.Recorder{Config: rc, Timeout: 5 * time.Second, UserAgent: "fibguard-agent", Log: log}
		ev := agent.NewEvents(ctx, rec, opts.node, log)
		defer func() { <-ev.Done() }()
		sinks = append(sinks, ev)
		if cfg.Cluster, err = cluster.Watch(ctx, rc, opts.node, log); err != nil {
			return err
		}
	}
	if opts.heartbeat != "" {
		if err := agent.RegisterInstallMetrics(reg, opts.heartbeat, install.LiveBound(install.DefaultResync)); err != nil {
			return err
		}
	}
	if opts.metrics != "" {
		stopServer, err := serve(opts.metrics, reg, h, log)
		if err != nil {
			return err
		}
		defer stopServer()
	}
	cfg.Sink, cfg.Log = sinks, log
	log.Info("fibguard-agent watching", "results", cfg.ResultsDir, "metrics", opts.metrics, "api", opts.kubeconfig != noAPI)
	err = agent.Run(ctx, cfg)
	cancel()
	return err
}

// clientConfig is the client configuration to record Events and watch
// the Node objects with: the kubeconfig at path, or the pod's service
// account (whose token client-go reads again as kubelet rotates it).
func clientConfig(path string) (*rest.Config, error) {
	if path == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("the pod's service account: %w (-kubeconfig none runs without the API)", err)
		}
		return cfg, nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return cfg, nil
}

// serve starts the HTTP server of /metrics and /healthz on addr; the
// returned function stops it.
func serve(addr string, reg *prometheus.Registry, h *health, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.Handle("/healthz", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx) // stopping anyway
	}, nil
}

// health is /healthz: healthy while rounds of checks keep coming, at
// least every resync. It is also a Sink, told of each round.
type health struct {
	maxAge time.Duration
	last   atomic.Int64 // unix nanoseconds of the last round; 0: none yet
}

func (h *health) Transition(agent.Transition) {}

func (h *health) NodeTransition(agent.NodeTransition) {}

func (h *health) Round(agent.Round) { h.last.Store(time.Now().UnixNano()) }

func (h *health) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	last := h.last.Load()
	if last == 0 {
		http.Error(w, "no round of checks yet", http.StatusServiceUnavailable)
		return
	}
	if age := time.Since(time.Unix(0, last)); age > h.maxAge {
		http.Error(w, fmt.Sprintf("last round of checks %v ago", age.Round(time.Second)), http.StatusServiceUnavailable)
		return
	}
	_, _ = fmt.Fprintln(w, "ok") // the client went away: nothing to do
}
