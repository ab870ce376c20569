// Command fibguard-install runs in fibguard's DaemonSet on every node: it
// installs the plugin binary, the event binary that records the plugin's
// Kubernetes Events and a kubeconfig, chains fibguard into the node's
// primary CNI configuration, keeps them in place until SIGTERM, and then
// (unless told not to) uninstalls. All logic is in package install.
//
// Every flag can also be set by the environment variable in brackets in
// -help; a flag on the command line wins.
//
//	fibguard-install             install, watch, and on SIGTERM uninstall unless the
//	                             pod's DaemonSet remains (an update: the next pod takes over)
//	fibguard-install -check      exit 0 if installed (the readiness probe)
//	fibguard-install -live       exit 0 if the run loop is not hung (the liveness probe)
//	fibguard-install -uninstall  uninstall now and exit
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/fibguard/fibguard/install"
	"github.com/fibguard/fibguard/internal/envflag"
	"github.com/fibguard/fibguard/internal/version"
)

// softMemoryLimit is the heap size past which the Go runtime collects
// harder (debug.SetMemoryLimit), unless GOMEMLIMIT says otherwise: well
// under the DaemonSet's limit of 128 MiB. With the default GOGC alone, an
// uninstall over dozens of configuration files of 1 MiB each (every one
// parsed, its garbage left for a collection that comes at twice the live
// heap) peaked at 80 MiB resident; with it, at 54 MiB (TestMemoryWithinLimit).
const softMemoryLimit = 48 << 20

func main() {
	version.ExitIfRequested("fibguard-install", os.Args[1:])
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(softMemoryLimit)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, mode, exit, err := parse(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fibguard-install:", err)
		os.Exit(2)
	}
	cfg.Log = log
	in, err := install.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fibguard-install:", err)
		os.Exit(2)
	}
	switch mode {
	case "check":
		err = in.Check()
	case "live":
		err = install.Live(cfg.Heartbeat, install.LiveBound(cfg.Resync), time.Now())
	case "uninstall":
		err = in.Uninstall()
	default:
		err = serve(in, cfg, exit, log)
	}
	if err != nil {
		log.Error("fibguard-install failed", "mode", mode, "err", err)
		os.Exit(1)
	}
}

// stopBudget is how long the installer may take to stop once told to
// (SIGTERM): the run loop's last pass, the question to the API server
// (at most 5 s) and the uninstall — each wait for a directory lock is at
// most a few seconds, so this is a safety net for what cannot be bounded
// otherwise (a read from a hung file system, say). It is well under the
// DaemonSet's terminationGracePeriodSeconds (30 s), so that the installer
// says itself, before kubelet's SIGKILL, that it did not finish.
const stopBudget = 20 * time.Second

// serve runs the installer until SIGTERM or SIGINT, then uninstalls
// unless the exit plan says otherwise, all within stopBudget of the
// signal.
func serve(in *install.Installer, cfg install.Config, exit exitPlan, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go watchdog(ctx, log)
	err := in.Run(ctx)
	stop()
	if exit.uninstall(context.Background(), cfg, log) {
		log.Info("stopping: uninstalling fibguard")
		if uerr := in.Uninstall(); uerr != nil {
			err = errors.Join(err, fmt.Errorf("uninstall not complete: %w", uerr))
		}
	}
	return err
}

// watchdog exits the process stopBudget after ctx is done (the signal,
// or Run's end), whatever is still running: every file the installer
// writes is replaced whole by rename, so an exit at any point leaves each
// file as it was or as it was meant to be.
func watchdog(ctx context.Context, log *slog.Logger) {
	<-ctx.Done()
	time.Sleep(stopBudget)
	log.Error("fibguard-install failed: stopping took longer than the budget; exiting with the uninstall unfinished (fibguard may remain installed: run fibguard-install -uninstall on the node)",
		"budget", stopBudget)
	os.Exit(1)
}

// exitPlan is what the installer does when it is stopped.
type exitPlan struct {
	// onExit: uninstall when stopped (-uninstall-on-exit)...
	onExit bool
	// pod: ...unless this pod's DaemonSet remains (-pod-name; "" never
	// asks).
	pod string
}

// uninstall decides, once stopped, whether to uninstall: not when told
// not to, nor when the pod's DaemonSet will start another installer pod on
// this node (an update, a deleted pod). When the API server cannot say,
// fibguard stays: a node shutting down keeps its guard, and an installation
// left behind still checks pods.
func (p exitPlan) uninstall(ctx context.Context, cfg install.Config, log *slog.Logger) bool {
	if !p.onExit {
		return false
	}
	if p.pod == "" || cfg.Kubeconfig == nil {
		return true
	}
	s := install.Successor{Server: cfg.Kubeconfig.Server, ServiceAccountDir: cfg.Kubeconfig.ServiceAccountDir, Pod: p.pod}
	keep, why, err := s.Expected(ctx)
	switch {
	case err != nil:
		log.Warn("stopping: cannot tell whether another installer pod follows; leaving fibguard installed", "err", err)
		return false
	case keep:
		log.Info("stopping: leaving fibguard installed", "reason", why)
		return false
	}
	log.Info("stopping: fibguard is being removed", "reason", why)
	return true
}

// parse reads the flags and the environment into a valid installer
// configuration, what to do (run, check or uninstall), and what to do when
// stopped.
func parse(args []string, getenv func(string) string) (cfg install.Config, mode string, exit exitPlan, err error) {
	fs := envflag.New("fibguard-install", getenv)
	str, boolean, duration := fs.String, fs.Bool, fs.Duration
	confDir := str("conf-dir", "CNI_CONF_DIR", "/host/etc/cni/net.d", "the node's CNI configuration directory, as mounted")
	hostConfDir := str("host-conf-dir", "HOST_CNI_CONF_DIR", "/etc/cni/net.d", "the same directory as the node (and so the plugin) sees it")
	binDir := str("bin-dir", "CNI_BIN_DIR", "/host/opt/cni/bin", "the node's CNI bin directory, as mounted")
	binary := str("binary", "FIBGUARD_BINARY", "/opt/fibguard/fibguard", "the plugin binary to install")
	eventBinary := str("event-binary", "FIBGUARD_EVENT_BINARY", "",
		`the event binary to install next to the plugin (it records the plugin's Kubernetes Events); `+
			`default: `+install.EventBinaryName+` next to -binary; "none" installs none`)
	pluginMode := str("mode", "FIBGUARD_MODE", install.ModeEnforce, "the plugin's mode: enforce or warn")
	options := str("options", "FIBGUARD_OPTIONS", "", `other fields of fibguard's entry, as a JSON object, e.g. {"serviceCIDRs":["10.96.0.0/12"]}`)
	saDir := str("service-account-dir", "FIBGUARD_SERVICE_ACCOUNT_DIR", install.DefaultServiceAccountDir, "the pod's service account (token, ca.crt, namespace)")
	kcName := str("kubeconfig-name", "FIBGUARD_KUBECONFIG_NAME", "fibguard-kubeconfig", `name of the plugin's kubeconfig in the conf dir; "" writes none`)
	resync := duration("resync", "FIBGUARD_RESYNC", install.DefaultResync, "how often to check the installation without a change seen")
	tokenPoll := duration("token-poll", "FIBGUARD_TOKEN_POLL", 30*time.Second, "how often to read the service account token again")
	onExit := boolean("uninstall-on-exit", "FIBGUARD_UNINSTALL_ON_EXIT", true,
		"uninstall when stopped (SIGTERM), unless -pod-name's DaemonSet remains")
	podName := str("pod-name", "POD_NAME", "",
		"this installer's pod: when stopped, fibguard stays installed if the pod's DaemonSet remains (an update); empty: never ask")
	heartbeat := str("heartbeat-file", "FIBGUARD_HEARTBEAT_FILE", "",
		"where the run loop records the end of each pass, for -live: a file in the container (an emptyDir), not on the host; empty: none")
	check := fs.FlagSet.Bool("check", false, "check the installation and exit: 0 if complete (readiness probe)")
	live := fs.FlagSet.Bool("live", false, "check that the run loop ended a pass within 3 resync periods and 6 s and exit: 0 if so (liveness probe)")
	uninstall := fs.FlagSet.Bool("uninstall", false, "uninstall and exit")
	if err := fs.Parse(args); err != nil {
		return cfg, "", exit, err
	}
	switch {
	case btoi(*check)+btoi(*uninstall)+btoi(*live) > 1:
		return cfg, "", exit, errors.New("-check, -live and -uninstall exclude each other")
	case *live:
		mode = "live"
	case *check:
		mode = "check"
	case *uninstall:
		mode = "uninstall"
	default:
		mode = "run"
	}

	opts, err := install.ParseOptions(*options)
	if err != nil {
		return cfg, "", exit, err
	}
	cfg = install.Config{
		ConfDir:     *confDir,
		BinDir:      *binDir,
		Binary:      *binary,
		EventBinary: eventBinaryPath(*eventBinary, *binary),
		Entry:       install.Entry{Mode: *pluginMode, Options: opts},
		Resync:      *resync,
		TokenPoll:   *tokenPoll,
		Heartbeat:   *heartbeat,
	}
	if *kcName != "" {
		if filepath.Base(*kcName) != *kcName {
			return cfg, "", exit, fmt.Errorf("-kubeconfig-name %q: a file name, not a path", *kcName)
		}
		if _, ok := opts["kubeconfig"]; ok {
			return cfg, "", exit, errors.New(`the options set "kubeconfig": set -kubeconfig-name "" to use that file instead of the installer's`)
		}
		server, err := install.ServerFromEnv(getenv)
		if err != nil {
			return cfg, "", exit, err
		}
		cfg.Kubeconfig = &install.Kubeconfig{
			Path:              filepath.Join(*confDir, *kcName),
			ServiceAccountDir: *saDir,
			Server:            server,
		}
		// The plugin runs on the host: the entry names the host's path.
		path, err := json.Marshal(filepath.Join(*hostConfDir, *kcName))
		if err != nil {
			return cfg, "", exit, fmt.Errorf("encoding the kubeconfig path: %w", err)
		}
		if cfg.Entry.Options == nil {
			cfg.Entry.Options = map[string]json.RawMessage{}
		}
		cfg.Entry.Options["kubeconfig"] = path
	}
	// The plugin runs under the container runtime and never sees the
	// DaemonSet's NODE_NAME: the entry carries it, for the Events'
	// reporting instance.
	if node := getenv("NODE_NAME"); node != "" {
		if _, ok := opts["nodeName"]; !ok {
			name, err := json.Marshal(node)
			if err != nil {
				return cfg, "", exit, fmt.Errorf("encoding the node name: %w", err)
			}
			if cfg.Entry.Options == nil {
				cfg.Entry.Options = map[string]json.RawMessage{}
			}
			cfg.Entry.Options["nodeName"] = name
		}
	}
	return cfg, mode, exitPlan{onExit: *onExit, pod: *podName}, cfg.Validate()
}

// eventBinaryPath is the event binary to install for the -event-binary
// value flag: by default the one next to the plugin binary (as the image
// has them), "" for "none".
func eventBinaryPath(flag, binary string) string {
	switch flag {
	case "":
		return filepath.Join(filepath.Dir(binary), install.EventBinaryName)
	case "none":
		return ""
	default:
		return flag
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
