package install

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"
)

// Config is what the installer does on a node.
type Config struct {
	// ConfDir is the CNI configuration directory, as mounted in the
	// installer's pod (e.g. /host/etc/cni/net.d).
	ConfDir string
	// BinDir is the CNI bin directory, as mounted (e.g. /host/opt/cni/bin).
	BinDir string
	// Binary is the fibguard plugin binary to install.
	Binary string
	// EventBinary is the event binary (cmd/fibguard-event) to install next
	// to the plugin, which runs it to record Kubernetes Events; "" installs
	// none, and the plugin then logs that it cannot record Events.
	EventBinary string
	// Entry is fibguard's conflist entry. When Kubeconfig is set, the
	// entry's "kubeconfig" option should name the file as the host sees it.
	Entry Entry
	// Kubeconfig, when not nil, is written and kept fresh for the plugin.
	Kubeconfig *Kubeconfig
	// Resync is how often Run reconciles even without a change it saw
	// (DefaultResync in the DaemonSet).
	Resync time.Duration
	// TokenPoll is how often Run reads the service account token again.
	TokenPoll time.Duration
	// Heartbeat, when set, is the file where Run records the end of each
	// pass of its loop, for the liveness check (Live); it belongs in the
	// installer's container, not on the host.
	Heartbeat string
	// Log receives what Run does; nil discards it.
	Log *slog.Logger
}

// Validate reports every problem of c at once.
func (c *Config) Validate() error {
	var errs []error
	for _, d := range []struct{ name, path string }{
		{"conf dir", c.ConfDir}, {"bin dir", c.BinDir}, {"plugin binary", c.Binary},
	} {
		if d.path == "" {
			errs = append(errs, fmt.Errorf("%s: not set", d.name))
		} else if !filepath.IsAbs(d.path) {
			errs = append(errs, fmt.Errorf("%s %q: not an absolute path", d.name, d.path))
		}
	}
	if c.Heartbeat != "" && !filepath.IsAbs(c.Heartbeat) {
		errs = append(errs, fmt.Errorf("heartbeat file %q: not an absolute path", c.Heartbeat))
	}
	if c.EventBinary != "" && !filepath.IsAbs(c.EventBinary) {
		errs = append(errs, fmt.Errorf("event binary %q: not an absolute path", c.EventBinary))
	}
	if err := c.Entry.Validate(); err != nil {
		errs = append(errs, err)
	}
	if k := c.Kubeconfig; k != nil {
		if !filepath.IsAbs(k.Path) {
			errs = append(errs, fmt.Errorf("kubeconfig path %q: not an absolute path", k.Path))
		}
		if k.ServiceAccountDir == "" {
			errs = append(errs, errors.New("service account dir: not set"))
		}
		if k.Server == "" {
			errs = append(errs, errors.New("API server URL: not set"))
		}
	}
	if c.Resync <= 0 {
		errs = append(errs, fmt.Errorf("resync %v: must be positive", c.Resync))
	}
	if c.Kubeconfig != nil && c.TokenPoll <= 0 {
		errs = append(errs, fmt.Errorf("token poll %v: must be positive", c.TokenPoll))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid installer configuration: %w", err)
	}
	return nil
}

// DefaultResync is fibguard-install's -resync.
const DefaultResync = 30 * time.Second

// Installer installs fibguard on a node according to its Config.
type Installer struct {
	cfg Config
	log *slog.Logger
	// lastBeat is the time the heartbeat file holds (Run's goroutine only).
	lastBeat time.Time
	// chained: a pass of Run has chained fibguard; reinserts counts the
	// passes since that had to chain it again (Run's goroutine only).
	chained   bool
	reinserts uint64
}

// New validates cfg and returns an installer for it.
func New(cfg Config) (*Installer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Installer{cfg: cfg, log: log}, nil
}

// installedBinary is a file the installer puts into the CNI bin dir.
type installedBinary struct {
	src, name string
}

// binaries are the files to install, in the order to install them: the
// event binary before the plugin that runs it.
func (in *Installer) binaries() []installedBinary {
	var bs []installedBinary
	if in.cfg.EventBinary != "" {
		bs = append(bs, installedBinary{in.cfg.EventBinary, EventBinaryName})
	}
	return append(bs, installedBinary{in.cfg.Binary, PluginType})
}

// copyBinaries installs every binary (see CopyBinary).
func (in *Installer) copyBinaries() error {
	for _, b := range in.binaries() {
		if _, err := CopyBinary(b.src, in.cfg.BinDir, b.name); err != nil {
			return err
		}
	}
	return nil
}

// Install installs once, in the order that never leaves a conflist naming
// a plugin that cannot run: the binaries, then the kubeconfig, then the
// entry in the primary configuration. It returns ErrNoPrimary (wrapped)
// when the primary CNI has not written its configuration yet.
func (in *Installer) Install() error {
	if err := in.copyBinaries(); err != nil {
		return err
	}
	if k := in.cfg.Kubeconfig; k != nil {
		if _, err := k.Write(); err != nil {
			return err
		}
	}
	_, err := InsertEntry(in.cfg.ConfDir, in.cfg.Entry)
	return err
}

// Uninstall removes what Install added, in the reverse order: the entries
// (and conversions), then the kubeconfig, then the binaries. It carries on
// after an error, so that as much as possible is removed, and reports
// every error.
func (in *Installer) Uninstall() error {
	var errs []error
	changed, err := RemoveEntry(in.cfg.ConfDir)
	for _, f := range changed {
		in.log.Info("uninstall restored a CNI configuration file", "path", f)
	}
	if err != nil {
		errs = append(errs, err)
	}
	if k := in.cfg.Kubeconfig; k != nil {
		if err := k.Remove(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		errs = append(errs, in.removeBinaries())
	}
	return errors.Join(errs...)
}

// removeBinaries removes the binaries unless a configuration still names
// fibguard: an entry someone else wrote, put back by RemoveEntry. Without
// the plugin that configuration would fail every pod instead of checking
// it. The event binary goes whether or not one is configured now: an
// earlier installer may have put it there.
func (in *Installer) removeBinaries() error {
	left, err := EntriesLeft(in.cfg.ConfDir)
	if err != nil {
		return err
	}
	if len(left) > 0 {
		in.log.Info("the binaries stay: configurations the installer did not write name fibguard", "files", left)
		return nil
	}
	var errs []error
	for _, name := range []string{PluginType, EventBinaryName} {
		if err := RemoveBinary(in.cfg.BinDir, name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Check is the readiness check: nil when the binaries are in place, the
// kubeconfig written (if configured) and the primary configuration chains
// fibguard with the configured entry.
func (in *Installer) Check() error {
	for _, b := range in.binaries() {
		ok, err := binaryInstalled(b.src, in.cfg.BinDir, b.name)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s is missing or differs from %s", filepath.Join(in.cfg.BinDir, b.name), b.src)
		}
	}
	if k := in.cfg.Kubeconfig; k != nil {
		if _, _, err := readFile(k.Path); err != nil {
			return fmt.Errorf("kubeconfig: %w", err)
		}
	}
	return CheckEntry(in.cfg.ConfDir, in.cfg.Entry)
}

// Run installs and keeps the installation in place until ctx is done: it
// watches the conf and bin dirs and puts the entry and the binary back
// when someone (the primary CNI plugin rewriting its file) removes them,
// and keeps the kubeconfig's token fresh. A missing primary configuration
// or a failed pass is logged and retried; Run returns an error only if it
// cannot start (the binary or the kubeconfig cannot be written at all).
// It returns nil once ctx is done; uninstalling is the caller's choice.
func (in *Installer) Run(ctx context.Context) error {
	// The loop counts as alive from its start: the first pass may wait.
	in.beat(nil)
	// Without the binaries to install the installer cannot work: that is
	// fatal. Something in the node's bin dir that it must not replace (a
	// FIFO named fibguard, say) is the node's state: logged, retried by
	// the loop, the installation unready meanwhile.
	if err := in.copyBinaries(); errors.Is(err, errSource) {
		return err
	} else if err != nil {
		in.log.Error("installing the binaries failed; retrying", "err", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var keepErr error
	if k := in.cfg.Kubeconfig; k != nil {
		if _, err := k.Write(); err != nil {
			return err
		}
		wg.Go(func() {
			keepErr = k.Keep(ctx, in.cfg.TokenPoll, in.log)
		})
	}
	var last Change
	err := Watch(ctx, []string{in.cfg.ConfDir, in.cfg.BinDir}, in.cfg.Resync, in.log, func() error {
		err := in.pass(&last)
		in.beat(err)
		return err
	})
	cancel()
	wg.Wait()
	return errors.Join(err, keepErr)
}

// pass is one reconcile of Run's loop: the binaries, then the entry. last
// is the previous pass's change, to log only what is new.
func (in *Installer) pass(last *Change) error {
	if err := in.ensureBinaries(); err != nil {
		return err
	}
	ch, err := InsertEntry(in.cfg.ConfDir, in.cfg.Entry)
	if err != nil {
		return err
	}
	if ch.Action != Unchanged || ch.Path != last.Path {
		in.log.Info("fibguard chained into the primary configuration", "path", ch.Path, "action", string(ch.Action))
	}
	if in.chained && ch.Action != Unchanged {
		in.reinserts++
	}
	in.chained = true
	*last = ch
	return nil
}

// ensureBinaries copies a binary again if it is missing or its size
// changed; a full comparison is left to the start of Run.
func (in *Installer) ensureBinaries() error {
	for _, b := range in.binaries() {
		ok, err := binaryInstalled(b.src, in.cfg.BinDir, b.name)
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		if _, err := CopyBinary(b.src, in.cfg.BinDir, b.name); err != nil {
			return err
		}
		in.log.Info("binary restored", "path", filepath.Join(in.cfg.BinDir, b.name))
	}
	return nil
}
