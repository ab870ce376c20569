package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/fibguard/fibguard/checker"
	"github.com/fibguard/fibguard/fib/live"
	"github.com/fibguard/fibguard/install"
)

// Sink receives what the agent finds: Events, metrics and logs are sinks.
// Its methods are called from the agent's loop, one at a time, and should
// not block for long: a slow sink delays the next round.
type Sink interface {
	// Transition is called for every pod whose network changed state.
	Transition(Transition)
	// NodeTransition is called when the node's pod networks change state.
	NodeTransition(NodeTransition)
	// Round is called after every round of checks.
	Round(Round)
}

// Round is one round of checks.
type Round struct {
	Verdicts []Verdict
	// Node is the outcome of the node-wide checks.
	Node NodeVerdict
	// Duration is the time the round took: reading the cache's changed
	// files and the host's network, and the checks.
	Duration time.Duration
	// Changes are the changes that led to the round; Overflow is set when
	// some were lost.
	Changes  []string
	Overflow bool
	// Errors are the cache files that could not be read, and why.
	Errors []error
}

// Config configures Run.
type Config struct {
	// ResultsDir is libcni's result cache, /var/lib/cni/results on a node.
	ResultsDir string
	// Netns is the host's network namespace: "" for the agent's own (a
	// pod with hostNetwork), or a path or name as fib/live.Open takes.
	Netns string
	// ConfDir is the node's CNI configuration directory, as mounted: the
	// IPAM ranges of its primary configuration are pod networks of the
	// node, for the node-wide checks. "" reads none.
	ConfDir string
	// Cluster follows the Node objects: this node's pod CIDRs and the
	// other nodes, for the node-wide checks. nil checks only ConfDir's
	// ranges, against no other node.
	Cluster ClusterSource
	// Debounce is how long the node must be quiet after a change before a
	// round: a route daemon changing many routes, or a CNI plugin setting
	// up a pod, makes a burst of notifications that count as one.
	Debounce time.Duration
	// MaxDelay bounds the wait for a quiet moment: a change is checked at
	// the latest this long after it, even in an endless storm.
	MaxDelay time.Duration
	// Resync is the longest time between two rounds: what the kernel does
	// not announce (route_localnet and other sysctls) is seen then.
	Resync time.Duration
	Sink   Sink
	Log    *slog.Logger
}

// Defaults of Config.
const (
	DefaultDebounce = 100 * time.Millisecond
	DefaultMaxDelay = time.Second
	DefaultResync   = 30 * time.Second
)

// maxChangesKept bounds the changes remembered between two rounds; a
// storm keeps the first ones, which caused it, and counts the rest.
const maxChangesKept = 20

// Run watches the host's network and the result cache until ctx is done,
// and runs a round of checks after every burst of changes, and every
// Resync. It returns nil when ctx is done, or an error if it cannot start
// (the namespace cannot be opened or subscribed to).
func Run(ctx context.Context, cfg Config) error {
	cfg = withDefaults(cfg)
	ns, err := live.Open(cfg.Netns)
	if err != nil {
		return err
	}
	defer ns.Close()
	sub, err := live.Subscribe(cfg.Netns)
	if err != nil {
		return err
	}
	w := &watcher{pending: make(chan struct{}, 1)}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer sub.Close() // ends the reader below, before wg.Wait
	wg.Go(func() { w.readKernel(sub, cfg.Log) })
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() { w.watchFiles(ctx, cfg) })
	if cfg.Cluster != nil {
		wg.Go(func() { w.watchCluster(ctx, cfg.Cluster) })
	}
	g := &guard{cfg: cfg, ns: ns, tracker: newTracker(), cache: newCache(cfg.ResultsDir)}
	g.round(w.take())
	return w.loop(ctx, cfg, func() { g.round(w.take()) })
}

func withDefaults(cfg Config) Config {
	if cfg.Debounce <= 0 {
		cfg.Debounce = DefaultDebounce
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = DefaultMaxDelay
	}
	if cfg.Resync <= 0 {
		cfg.Resync = DefaultResync
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// watcher collects what changed between two rounds, from the kernel's
// notifications and the cache directory's.
type watcher struct {
	mu       sync.Mutex
	changes  []string
	dropped  int
	overflow bool
	// pending holds a signal while changes wait for a round.
	pending chan struct{}
}

// note records changes and signals a round.
func (w *watcher) note(texts []string, overflow bool) {
	w.mu.Lock()
	for _, t := range texts {
		if slices.Contains(w.changes, t) {
			continue // said once is enough
		}
		if len(w.changes) < maxChangesKept {
			w.changes = append(w.changes, t)
		} else {
			w.dropped++
		}
	}
	w.overflow = w.overflow || overflow
	w.mu.Unlock()
	select {
	case w.pending <- struct{}{}:
	default:
	}
}

// take returns and forgets the changes noted so far.
func (w *watcher) take() (changes []string, overflow bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	changes, overflow = w.changes, w.overflow
	if w.dropped > 0 {
		changes = append(changes, fmt.Sprintf("and %d more changes", w.dropped))
	}
	w.changes, w.dropped, w.overflow = nil, 0, false
	return changes, overflow
}

// readKernel notes the kernel's notifications until the subscription is
// closed.
func (w *watcher) readKernel(sub *live.Subscription, log *slog.Logger) {
	for {
		cs, err := sub.Next()
		switch {
		case errors.Is(err, os.ErrClosed):
			return
		case errors.Is(err, live.ErrOverflow):
			w.note(nil, true)
			continue
		case err != nil:
			// A message the agent cannot read: something changed all the
			// same.
			log.Warn("reading the kernel's notifications", "err", err)
			w.note(nil, true)
		}
		texts := make([]string, 0, len(cs))
		for _, c := range cs {
			texts = append(texts, c.Text)
		}
		if len(texts) > 0 {
			w.note(texts, false)
		}
	}
}

// watchFiles notes every change of the result cache (a pod set up or
// torn down; the directory may not exist before the first pod) and of the
// CNI configuration directory (the node's IPAM ranges, fibguard's entry).
func (w *watcher) watchFiles(ctx context.Context, cfg Config) {
	dirs := []string{cfg.ResultsDir}
	if cfg.ConfDir != "" {
		dirs = append(dirs, cfg.ConfDir)
	}
	first := true
	err := install.Watch(ctx, dirs, cfg.Resync, cfg.Log, func() error {
		if first { // Watch's first call is not a change
			first = false
			return nil
		}
		w.note(nil, false)
		return nil
	})
	if err != nil {
		cfg.Log.Warn("cannot watch the CNI result cache and configuration; relying on the resync", "dirs", dirs, "err", err)
	}
}

// watchCluster notes every change of the Node objects until ctx is done.
func (w *watcher) watchCluster(ctx context.Context, c ClusterSource) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.Changed():
			w.note([]string{"the cluster's Node objects changed"}, false)
		}
	}
}

// loop calls round after each burst of changes — once the node has been
// quiet for Debounce, or MaxDelay after the burst began — and every
// Resync, until ctx is done.
func (w *watcher) loop(ctx context.Context, cfg Config, round func()) error {
	resync := time.NewTicker(cfg.Resync)
	defer resync.Stop()
	var quiet, deadline <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.pending:
			if deadline == nil {
				deadline = time.After(cfg.MaxDelay)
			}
			quiet = time.After(cfg.Debounce)
			continue
		case <-quiet:
		case <-deadline:
		case <-resync.C:
		}
		quiet, deadline = nil, nil
		round()
	}
}

// guard is the state of the checks between rounds.
type guard struct {
	cfg     Config
	ns      *live.Namespace
	tracker *tracker
	node    nodeTracker
	cache   *cache
}

// round re-reads what changed in the cache, checks every attachment and
// the node, and reports to the sink.
func (g *guard) round(changes []string, overflow bool) {
	start := time.Now()
	atts, errs := g.cache.read()
	verdicts, err := CheckAll(g.ns, atts)
	if err != nil {
		g.cfg.Log.Error("round of checks failed; retrying at the next change", "err", err)
		return
	}
	node, err := g.checkNode(atts)
	if err != nil {
		errs = append(errs, err)
	}
	transitions := g.tracker.update(verdicts, changes)
	nodeTransition, nodeChanged := g.node.update(node, changes)
	r := Round{Verdicts: verdicts, Node: node, Duration: time.Since(start), Changes: changes, Overflow: overflow, Errors: errs}
	if g.cfg.Sink == nil {
		return
	}
	for _, t := range transitions {
		g.cfg.Sink.Transition(t)
	}
	if nodeChanged {
		g.cfg.Sink.NodeTransition(nodeTransition)
	}
	g.cfg.Sink.Round(r)
}

// checkNode runs the node-wide checks with what is known of the cluster.
func (g *guard) checkNode(atts []*Attachment) (NodeVerdict, error) {
	var view ClusterView
	if g.cfg.Cluster != nil {
		view, _ = g.cfg.Cluster.View()
	}
	var ranges []checker.PodNetwork
	var err error
	if g.cfg.ConfDir != "" {
		if ranges, err = ipamRanges(g.cfg.ConfDir); err != nil {
			err = fmt.Errorf("reading the pod networks of the CNI configuration: %w", err)
		}
	}
	return checkNode(view, ranges, atts), err
}
