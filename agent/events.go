package agent

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/fibguard/fibguard/checker"
	"github.com/fibguard/fibguard/podevent"
)

// Recorder records an Event (podevent/kube's Recorder).
type Recorder interface {
	Record(ctx context.Context, ev podevent.Event) (podevent.Outcome, error)
}

// eventQueue bounds the Events waiting for the API server: a storm of
// transitions while it is away is logged, not kept without limit.
const eventQueue = 256

// Events is a Sink that records an Event on the pod for each transition:
// Warning PodNetworkBroken with the error findings and what changed on the
// node before, Normal PodNetworkRestored when it passes again. As for the
// plugin's Events, repeats of the same pod and reason count up one Event.
// Events are recorded in order on a goroutine of their own, so that a
// slow or absent API server delays no round of checks.
type Events struct {
	rec   Recorder
	node  string
	log   *slog.Logger
	queue chan podevent.Event
	done  chan struct{}
}

// NewEvents starts recording Events for node with rec until ctx is done.
func NewEvents(ctx context.Context, rec Recorder, node string, log *slog.Logger) *Events {
	e := &Events{rec: rec, node: node, log: log, queue: make(chan podevent.Event, eventQueue), done: make(chan struct{})}
	go e.run(ctx)
	return e
}

// Done is closed once the recording goroutine has stopped.
func (e *Events) Done() <-chan struct{} { return e.done }

func (e *Events) run(ctx context.Context) {
	defer close(e.done)
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-e.queue:
			out, err := e.rec.Record(ctx, ev)
			if err != nil {
				e.log.Warn("recording an Event failed", "pod", ev.Pod.String(), "reason", ev.Reason, "err", err)
				continue
			}
			e.log.Info("Event recorded", "pod", ev.Pod.String(), "reason", ev.Reason, "event", out.Name, "count", out.Count)
		}
	}
}

// Transition queues the Event of a transition of a pod's network.
func (e *Events) Transition(t Transition) {
	pod := t.Verdict.Attachment.Pod
	if pod.Name == "" {
		return // not a Kubernetes pod: nothing to record an Event on
	}
	ev := podevent.Event{Pod: pod, Node: e.node, Action: "Recheck", Time: time.Now()}
	e.enqueue(describe(ev, t.Kind, t.Verdict.Findings, t.Changes, "the pod's network passes fibguard's checks again"))
}

// enqueue queues an Event for the recording goroutine, or drops it with a
// log line when too many wait.
func (e *Events) enqueue(ev podevent.Event) {
	select {
	case e.queue <- ev:
	default:
		e.log.Warn("too many Events waiting for the API server; this one is dropped", "object", ev.Pod.String(), "reason", ev.Reason)
	}
}

// NodeTransition queues the Event of the node's pod networks changing
// state, on the Node; without the Node's UID (no cluster view yet) there
// is nothing to record it on, and the log has it.
func (e *Events) NodeTransition(t NodeTransition) {
	v := t.Verdict.View
	if v.Node == "" || v.NodeUID == "" {
		return
	}
	ev := podevent.Event{
		Pod:  podevent.Pod{Namespace: podevent.NodeEventNamespace, Name: v.Node, UID: v.NodeUID},
		Kind: podevent.KindNode, Node: e.node, Action: "Recheck", Time: time.Now(),
	}
	e.enqueue(describe(ev, t.Kind, t.Verdict.Findings, t.Changes, "the node's pod networks pass fibguard's checks again"))
}

// describe sets the reason, type and message of the Event of a
// transition: Warning PodNetworkBroken with the error findings, or Normal
// PodNetworkRestored saying restored; each followed by what changed on the
// node before.
func describe(ev podevent.Event, kind Kind, findings []checker.Finding, changes []string, restored string) podevent.Event {
	if kind == Restored {
		ev.Reason, ev.Type = podevent.ReasonRestored, podevent.TypeNormal
		ev.Message = podevent.Message(append([]string{restored}, after(changes)...))
		return ev
	}
	ev.Reason, ev.Type = podevent.ReasonBroken, podevent.TypeWarning
	ev.Message = podevent.Message(errorLines(findings, changes))
	return ev
}

// Round does nothing: Events are about transitions.
func (e *Events) Round(Round) {}

// errorLines are the lines of a PodNetworkBroken message: each error
// finding, then what changed on the node before.
func errorLines(findings []checker.Finding, changes []string) []string {
	var lines []string
	for _, f := range findings {
		if f.Severity == checker.SeverityError {
			lines = append(lines, f.Line())
		}
	}
	return append(lines, after(changes)...)
}

// after says what changed on the node before a transition, if known.
func after(changes []string) []string {
	if len(changes) == 0 {
		return nil
	}
	return []string{"after: " + strings.Join(changes, ", ")}
}

// Sinks sends everything to each of its sinks, in order.
type Sinks []Sink

// Transition passes t to every sink.
func (s Sinks) Transition(t Transition) {
	for _, sink := range s {
		sink.Transition(t)
	}
}

// NodeTransition passes t to every sink.
func (s Sinks) NodeTransition(t NodeTransition) {
	for _, sink := range s {
		sink.NodeTransition(t)
	}
}

// Round passes r to every sink.
func (s Sinks) Round(r Round) {
	for _, sink := range s {
		sink.Round(r)
	}
}
