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
	switch t.Kind {
	case Broken, StillBroken:
		ev.Reason, ev.Type = podevent.ReasonBroken, podevent.TypeWarning
		ev.Message = podevent.Message(brokenLines(t))
	case Restored:
		ev.Reason, ev.Type = podevent.ReasonRestored, podevent.TypeNormal
		ev.Message = podevent.Message(append([]string{"the pod's network passes fibguard's checks again"}, after(t.Changes)...))
	}
	select {
	case e.queue <- ev:
	default:
		e.log.Warn("too many Events waiting for the API server; this one is dropped", "pod", pod.String(), "reason", ev.Reason)
	}
}

// Round does nothing: Events are about transitions.
func (e *Events) Round(Round) {}

// brokenLines are the lines of a PodNetworkBroken message: each error
// finding, then what changed on the node before.
func brokenLines(t Transition) []string {
	var lines []string
	for _, f := range t.Verdict.Findings {
		if f.Severity == checker.SeverityError {
			lines = append(lines, f.Line())
		}
	}
	return append(lines, after(t.Changes)...)
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

// Round passes r to every sink.
func (s Sinks) Round(r Round) {
	for _, sink := range s {
		sink.Round(r)
	}
}
