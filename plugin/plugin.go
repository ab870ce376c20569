package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/fibguard/fibguard/checker"
	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/fib/live"
	"github.com/fibguard/fibguard/internal/netconf"
	"github.com/fibguard/fibguard/internal/nodestatus"
	"github.com/fibguard/fibguard/internal/phase"
	"github.com/fibguard/fibguard/podevent"
)

// fibguard's own error codes; the spec leaves 100 and up to plugins.
const (
	// CodeRejected: in enforce mode, a check found a problem of severity
	// error. The message names the first finding, details holds all.
	CodeRejected uint = 100
	// CodeInternal: fibguard could not check the pod (a model could not
	// be read, a bug) and failurePolicy is Fail.
	CodeInternal uint = 101
)

// Versions are the CNI spec versions fibguard speaks. 0.1.0 and 0.2.0
// are left out: their results have no interface list, so a chained plugin
// cannot tell which interface is the pod's.
var Versions = version.PluginSupports("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")

// About is what the binary prints on stderr when run without CNI_COMMAND.
func About() string {
	return "CNI fibguard plugin " + buildVersion() + ": refuses pod networks the kernel would not route to the pod"
}

// release is the release the binary was built as, stamped by
// hack/build-image.sh (-ldflags -X .../plugin.release=v0.1.0); empty in
// other builds.
var release string

// buildVersion is the release stamped into the binary, else the module
// version it was built from.
func buildVersion() string {
	if release != "" {
		return release
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(unknown version)"
}

// msgNoPrevResult explains the most likely misconfiguration: fibguard
// listed first, or alone, in the conflist.
const msgNoPrevResult = "fibguard: no prevResult: fibguard is a chained plugin and must be listed " +
	"after the plugin that creates the pod interface (bridge, ptp...) in the conflist's plugins"

// Plugin runs the CNI commands.
type Plugin struct {
	// HostNetns is the path of the namespace the pod is reached from; ""
	// is the plugin process's own, where the runtime runs plugins. Tests
	// point it at a namespace they built.
	HostNetns string
	// Stdout receives the result; nothing else is ever written there, as
	// the runtime reads it as the CNI result.
	Stdout io.Writer
	// Stderr receives the log when no logFile is configured.
	Stderr io.Writer
	// EventBinary is the path of the event binary that records Kubernetes
	// Events; "" looks for podevent.EventBinary next to the running
	// executable, then in CNI_PATH. Tests point it at one they built.
	EventBinary string
	// ReapEventProcesses makes the process a child subreaper while it
	// runs the event binary, and ends every process left from it before
	// the command answers (podevent.ReapOrphans): nothing started for an
	// Event outlives the command. Only for the plugin's own process, whose
	// children are all the event binary's: New sets it.
	ReapEventProcesses bool
}

// New returns a Plugin for the binary: host namespace of the process,
// standard output and error, event processes reaped.
func New() *Plugin {
	return &Plugin{Stdout: os.Stdout, Stderr: os.Stderr, ReapEventProcesses: true}
}

// Funcs returns the commands for skel, each turning a panic into a CNI
// error instead of a crash.
func (p *Plugin) Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{
		Add:    recovered("ADD", p.Add),
		Del:    recovered("DEL", p.Del),
		Check:  recovered("CHECK", p.Check),
		Status: recovered("STATUS", p.Status),
		GC:     recovered("GC", p.GC),
	}
}

// recovered runs a command and turns a panic into a CodeInternal error
// with the stack in details, so the runtime reports a bug instead of a
// plugin that printed no result.
func recovered(cmd string, f func(*skel.CmdArgs) error) func(*skel.CmdArgs) error {
	return func(args *skel.CmdArgs) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = types.NewError(CodeInternal,
					fmt.Sprintf("fibguard: internal error: %s: panic: %v", cmd, r), string(debug.Stack()))
			}
		}()
		return f(args)
	}
}

// Add checks the pod's network and, if it passes, prints the prevResult
// unchanged; in enforce mode a finding of severity error rejects the pod
// with CodeRejected.
func (p *Plugin) Add(args *skel.CmdArgs) error {
	phase.End("skel")
	conf, err := p.verify("ADD", args)
	if err != nil {
		return err
	}
	err = passOn(conf, p.Stdout)
	phase.End("result")
	return err
}

// passOn prints the prevResult unchanged, in the configuration's version,
// as a chained plugin that accepts must: the runtime takes it for the
// chain's result. A prevResult already in that version is printed as the
// runtime gave it (Config.PassOn), byte for byte, fields fibguard does not
// know included; any other is converted. FuzzPassOn holds it to that for
// every prevResult netconf.Parse accepts.
func passOn(conf *netconf.Config, w io.Writer) error {
	if conf.PassOn != nil {
		if _, err := w.Write(conf.PassOn); err != nil {
			return types.NewError(types.ErrIOFailure, "fibguard: print result: "+err.Error(), "")
		}
		return nil
	}
	res, err := conf.PrevResult.GetAsVersion(conf.CNIVersion)
	if err != nil {
		return types.NewError(CodeInternal, fmt.Sprintf("fibguard: internal error: convert prevResult to %s: %v", conf.CNIVersion, err), "")
	}
	if err := res.PrintTo(w); err != nil {
		return types.NewError(types.ErrIOFailure, "fibguard: print result: "+err.Error(), "")
	}
	return nil
}

// Check re-validates a running pod the same way as Add, against the
// final result of the chain's ADD; it prints nothing on success. skel
// refuses CHECK for cniVersion before 0.4.0, as the spec asks.
func (p *Plugin) Check(args *skel.CmdArgs) error {
	_, err := p.verify("CHECK", args)
	return err
}

// Del always succeeds: fibguard creates nothing, so there is nothing to
// undo, and DEL must work without the network namespace, the prevResult
// or any service. It does not even parse the configuration. What skel
// checks before calling it (environment, a JSON config with a name and a
// supported cniVersion) can still fail.
func (p *Plugin) Del(*skel.CmdArgs) error { return nil }

// Status reports whether fibguard can serve ADD: it can unless its
// configuration is invalid, in which case every ADD would fail, so STATUS
// fails with ErrPluginNotAvailable and the configuration's problems. With
// "nodeStatus": "on" it also fails while the node agent's verdict says
// the node's pod network is untenable (nodeStatus).
func (p *Plugin) Status(args *skel.CmdArgs) error {
	conf, err := netconf.Parse(args.StdinData)
	if err != nil {
		return types.NewError(types.ErrPluginNotAvailable, "fibguard: not available: "+errMsg(err), "")
	}
	if conf.NodeStatus {
		return nodeStatus(conf.NodeStatusFile, time.Now())
	}
	return nil
}

// nodeStatus is STATUS's answer from the agent's verdict at path: an
// ErrPluginNotAvailable with the agent's reason while the node is not
// ready. No verdict, or a stale one (no agent, or one that stopped),
// says nothing, and STATUS passes: a verdict nobody keeps up must not take
// the node out. A file that cannot be read as a verdict (not a regular
// file, too large, not the agent's format) is an error naming it.
func nodeStatus(path string, now time.Time) error {
	st, err := nodestatus.Read(path, now)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, nodestatus.ErrStale):
		return nil
	case err != nil:
		return types.NewError(types.ErrPluginNotAvailable, "fibguard: cannot read the node agent's verdict: "+err.Error(), "")
	case !st.Ready:
		return types.NewError(types.ErrPluginNotAvailable, "fibguard: the node's pod network is untenable: "+st.Reason, "")
	}
	return nil
}

// GC succeeds: fibguard keeps no state per attachment.
func (p *Plugin) GC(*skel.CmdArgs) error { return nil }

// errMsg is the message of a CNI error without its details.
func errMsg(err error) string {
	var e *types.Error
	if errors.As(err, &e) {
		return e.Msg
	}
	return err.Error()
}

// verify runs the checks for ADD and CHECK. It returns the configuration
// when the pod may pass (no finding of severity error, mode warn, or an
// internal error that failurePolicy Ignore lets through) and a CNI error
// otherwise.
func (p *Plugin) verify(cmd string, args *skel.CmdArgs) (*netconf.Config, error) {
	conf, err := netconf.Parse(args.StdinData)
	if err != nil {
		return nil, err
	}
	phase.End("config")
	if conf.PrevResult == nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, msgNoPrevResult, "")
	}
	log, closeLog := p.logger(conf, cmd, args)
	defer closeLog()
	phase.End("log open")

	findings, err := p.evaluate(conf, args.Netns)
	var cniErr *types.Error
	switch {
	case errors.As(err, &cniErr):
		log.Error("pod network not checked", "error", err)
		return nil, cniErr
	case err != nil:
		return internalError(log, conf, err)
	}
	logFindings(log, findings)
	rej := rejection(findings)
	switch {
	case rej == nil:
		log.Info("pod network accepted", "findings", len(findings))
		phase.End("log record")
	case conf.Mode == netconf.ModeWarn:
		log.Warn("pod network would be rejected; mode warn lets it pass", "reason", rej.Msg)
		p.recordEvent(log, conf, cmd, args, podevent.ReasonWarning, findings)
	default:
		log.Error("pod network rejected", "reason", rej.Msg)
		p.recordEvent(log, conf, cmd, args, podevent.ReasonRejected, findings)
		return nil, rej
	}
	return conf, nil
}

// internalError applies the failurePolicy to an error that kept fibguard
// from judging the pod.
func internalError(log *slog.Logger, conf *netconf.Config, err error) (*netconf.Config, error) {
	attrs := []any{"error", err}
	details := ""
	var pe *panicError
	if errors.As(err, &pe) {
		details = string(pe.stack)
		attrs = append(attrs, "stack", details)
	}
	if conf.FailurePolicy == netconf.FailurePolicyIgnore {
		log.Error("pod network not checked: internal error ignored (failurePolicy Ignore)", attrs...)
		return conf, nil
	}
	log.Error("pod network not checked: internal error", attrs...)
	return nil, types.NewError(CodeInternal, "fibguard: internal error: "+err.Error(), details)
}

// logFindings writes one record per finding: errors at level error,
// warnings at level warn.
func logFindings(log *slog.Logger, findings []checker.Finding) {
	for _, f := range findings {
		level := slog.LevelWarn
		if f.Severity == checker.SeverityError {
			level = slog.LevelError
		}
		attrs := []any{"code", f.Code, "severity", f.Severity, "message", f.Message, "fix", f.Fix}
		if len(f.Trace) > 0 {
			attrs = append(attrs, "trace", f.Trace)
		}
		log.Log(context.Background(), level, "finding", attrs...)
	}
}

// panicError is a panic of the checks, kept with its stack.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("checks panicked: %v", e.value) }

// evaluate reads the host and pod namespaces and runs the checks. A
// *types.Error is the caller's mistake (CNI_NETNS); every other error is
// internal: the input was valid but fibguard could not judge it.
func (p *Plugin) evaluate(conf *netconf.Config, podNetns string) (findings []checker.Finding, err error) {
	if err := checkNetns(podNetns, p.HostNetns); err != nil {
		return nil, err
	}
	phase.End("netns check")
	// The two reads run one after the other on this goroutine: on two
	// goroutines they cost thread hand-offs that, on a loaded node, take
	// longer than the overlap saves (docs/performance.md, CNI ADD).
	h := p.loadHost(conf)
	if h.ns != nil {
		defer h.ns.Close()
	}
	if h.err != nil {
		return nil, h.err
	}
	phase.End("host model")
	pod, err := live.Load(podNetns)
	if err != nil {
		return nil, fmt.Errorf("read pod namespace: %w", err)
	}
	phase.End("pod model")
	defer func() {
		if r := recover(); r != nil {
			findings, err = nil, &panicError{value: r, stack: debug.Stack()}
		}
	}()
	in := checker.Input{
		Host:         h.model,
		Pod:          pod,
		Result:       conf.Result,
		Kernel:       timedRouteGet(h.ns.RouteGet),
		ServiceCIDRs: conf.ServiceCIDRs,
		ClusterCIDRs: conf.ClusterCIDRs,
	}
	findings = checker.Check(in, conf.Options)
	phase.End("checks")
	return findings, nil
}

// timedRouteGet counts the kernel's route queries of the checks as a
// phase of their own when phases are recorded; otherwise it is get.
func timedRouteGet(get func(fib.Query) (fib.Result, error)) func(fib.Query) (fib.Result, error) {
	if !phase.Enabled() {
		return get
	}
	return func(q fib.Query) (fib.Result, error) {
		start := time.Now()
		defer func() { phase.Add("kernel route queries", time.Since(start)) }()
		return get(q)
	}
}

// hostModel is the host namespace, open for the checks' kernel lookups,
// and its model; or why it could not be read.
type hostModel struct {
	ns    *live.Namespace
	model *fib.Model
	err   error
}

// loadHost opens the host namespace and reads the model of it that the
// host's lookups of the pod's addresses need: the host may hold a full
// routing table, which LoadFor does not read. The namespace stays open so
// that the checks ask the kernel over the same socket. A panic becomes an
// error that carries its stack.
func (p *Plugin) loadHost(conf *netconf.Config) (h hostModel) {
	defer func() {
		if r := recover(); r != nil {
			h.err = &panicError{value: r, stack: debug.Stack()}
		}
	}()
	ns, err := live.Open(p.HostNetns)
	if err != nil {
		return hostModel{err: fmt.Errorf("read host namespace: %w", err)}
	}
	m, err := ns.LoadFor(checker.HostDestinations(conf.Result))
	if err != nil {
		return hostModel{ns: ns, err: fmt.Errorf("read host namespace: %w", err)}
	}
	return hostModel{ns: ns, model: m}
}

// rejection is the error that rejects a pod with these findings, or nil
// when none has severity error. The message names the first error
// finding, which is what kubelet's FailedCreatePodSandBox event shows;
// details carries every finding as JSON: {"findings": [...]}.
func rejection(findings []checker.Finding) *types.Error {
	for _, f := range findings {
		if f.Severity != checker.SeverityError {
			continue
		}
		msg := fmt.Sprintf("fibguard: %s %s", f.Code, f.Message)
		if n := len(findings) - 1; n > 0 {
			msg += fmt.Sprintf(" (+%d more)", n)
		}
		details, err := json.Marshal(struct {
			Findings []checker.Finding `json:"findings"`
		}{findings})
		if err != nil {
			details = []byte(fmt.Sprintf("encode findings: %v", err))
		}
		return types.NewError(CodeRejected, msg, string(details))
	}
	return nil
}
