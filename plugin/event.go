package plugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/fibguard/fibguard/checker"
	"github.com/fibguard/fibguard/internal/netconf"
	"github.com/fibguard/fibguard/podevent"
)

// recordEvent has the Kubernetes Event of a rejection (reason
// podevent.ReasonRejected) or, in warn mode, of a rejection waived
// (podevent.ReasonWarning) recorded on the pod that CNI_ARGS names, by
// running the event binary (podevent.Send). Whatever happens is only
// logged: the verdict never depends on the API server or on the event
// binary, which is killed at eventTimeout. Without events on, a
// kubeconfig or a pod in CNI_ARGS nothing is run.
func (p *Plugin) recordEvent(log *slog.Logger, conf *netconf.Config, cmd string, args *skel.CmdArgs, reason string, findings []checker.Finding) {
	switch {
	case !conf.Events:
		log.Debug("no Kubernetes event: events off")
		return
	case conf.Kubeconfig == "":
		log.Debug("no Kubernetes event: no kubeconfig configured")
		return
	}
	pod, err := podevent.PodFromCNIArgs(args.Args)
	switch {
	case errors.Is(err, podevent.ErrNoPod):
		log.Debug("no Kubernetes event: " + err.Error())
		return
	case err != nil:
		log.Warn("no Kubernetes event", "error", err)
		return
	}
	node, err := nodeName(conf.NodeName, os.Getenv, os.Hostname)
	if err != nil {
		log.Warn("no Kubernetes event", "error", err)
		return
	}
	ev := podevent.Event{
		Pod:     pod,
		Reason:  reason,
		Message: podevent.Message(errorLines(findings)),
		Action:  cmd,
		Node:    node,
		Time:    time.Now(),
	}
	failed := func(err error) {
		log.Error("cannot record Kubernetes event; the verdict stands", "pod", pod.String(), "reason", reason, "error", err)
	}
	bin, err := p.eventBinary(args.Path)
	if err != nil {
		failed(err)
		return
	}
	res, err := p.send(log, conf.EventTimeout, bin, podevent.Request{
		Kubeconfig: conf.Kubeconfig,
		UserAgent:  userAgent(),
		Events:     []podevent.Event{ev},
	})
	if err != nil {
		failed(err)
		return
	}
	for _, w := range res.Warnings {
		log.Warn("API server warning", "warning", w)
	}
	out := res.Recorded[0]
	if out.Error != "" {
		failed(errors.New(out.Error))
		return
	}
	log.Info("Kubernetes event recorded", "pod", pod.String(), "event", out.Name, "reason", reason, "count", out.Count)
}

// reapTimeout bounds the end of the processes left from the event binary,
// after eventTimeout.
const reapTimeout = 500 * time.Millisecond

// send runs the event binary (podevent.Send) for at most timeout. Send
// gives it a PID namespace, which ends whatever it starts; with
// ReapEventProcesses the plugin is also a child subreaper for that time
// and then ends whatever is left, which matters where the kernel refused
// the namespace.
func (p *Plugin) send(log *slog.Logger, timeout time.Duration, bin string, req podevent.Request) (podevent.Result, error) {
	if p.ReapEventProcesses {
		if err := podevent.Subreap(true); err != nil {
			log.Warn("processes the event binary leaves may outlive the command", "error", err)
		}
		defer p.reap(log)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return podevent.Send(ctx, bin, req)
}

// reap ends the processes the event binary left and stops being a child
// subreaper.
func (p *Plugin) reap(log *slog.Logger) {
	n, err := podevent.ReapOrphans(reapTimeout)
	if n > 0 || err != nil {
		log.Warn("ended processes the event binary left running", "count", n, "error", err)
	}
	if err := podevent.Subreap(false); err != nil {
		log.Warn("still a child subreaper", "error", err)
	}
}

// eventBinary is the path of the event binary: Plugin.EventBinary if set,
// else fibguard-event next to this executable (where the installer puts
// it), else in a directory of CNI_PATH.
func (p *Plugin) eventBinary(cniPath string) (string, error) {
	if p.EventBinary != "" {
		return p.EventBinary, nil
	}
	var dirs []string
	if self, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(self))
	}
	return podevent.FindBinary(append(dirs, filepath.SplitList(cniPath)...)...)
}

// errorLines are the one-line summaries, "CODE message", of the findings
// of severity error: those that reject the pod.
func errorLines(findings []checker.Finding) []string {
	var lines []string
	for _, f := range findings {
		if f.Severity == checker.SeverityError {
			lines = append(lines, f.Line())
		}
	}
	return lines
}

// nodeName is the node the Events name: the configured nodeName, else
// the NODE_NAME environment variable (as a DaemonSet sets it from
// spec.nodeName), else the host name lowercased, as kubelet names its
// node by default.
func nodeName(configured string, getenv func(string) string, hostname func() (string, error)) (string, error) {
	if configured != "" {
		return configured, nil
	}
	if n := getenv("NODE_NAME"); n != "" {
		return n, nil
	}
	h, err := hostname()
	if err != nil {
		return "", fmt.Errorf("node name: no nodeName, no NODE_NAME, and the host name: %w", err)
	}
	return strings.ToLower(strings.TrimSpace(h)), nil
}

// userAgent names fibguard and its version in the API server's logs.
func userAgent() string {
	return "fibguard/" + buildVersion() + " (CNI plugin)"
}
