package plugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/fibguard/fibguard/checker"
	"github.com/fibguard/fibguard/podevent"
)

// recordEvent posts the Kubernetes Event of a rejection (reason
// podevent.ReasonRejected) or, in warn mode, of a rejection waived
// (podevent.ReasonWarning) on the pod that CNI_ARGS names. Whatever
// happens is only logged: the verdict never depends on the API server,
// and the whole attempt takes at most eventTimeout. Without events on, a
// kubeconfig or a pod in CNI_ARGS nothing is sent and no client is built.
func (p *Plugin) recordEvent(log *slog.Logger, conf *Config, cmd string, args *skel.CmdArgs, reason string, findings []checker.Finding) {
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
	}
	rec := &podevent.Recorder{
		Kubeconfig: conf.Kubeconfig,
		Timeout:    conf.EventTimeout,
		UserAgent:  userAgent(),
		Log:        log,
	}
	out, err := rec.Record(context.Background(), ev)
	if err != nil {
		log.Error("cannot record Kubernetes event; the verdict stands", "pod", pod.String(), "reason", reason, "error", err)
		return
	}
	log.Info("Kubernetes event recorded", "pod", pod.String(), "event", out.Name, "reason", reason, "count", out.Count)
}

// errorLines are the one-line summaries, "CODE message", of the findings
// of severity error: those that reject the pod.
func errorLines(findings []checker.Finding) []string {
	var lines []string
	for _, f := range findings {
		if f.Severity == checker.SeverityError {
			lines = append(lines, string(f.Code)+" "+f.Message)
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
