package kube

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"k8s.io/client-go/rest"

	"github.com/fibguard/fibguard/podevent"
)

// Recorder records Events with the credentials of a kubeconfig file, or
// of a client configuration a long-running process already holds. Its
// zero value is not usable: Kubeconfig or Config, and Timeout, are
// required.
type Recorder struct {
	// Kubeconfig is the path of the kubeconfig file; it is read on each
	// Record, so a rewritten file (a refreshed token) is used at once.
	Kubeconfig string
	// Config, when not nil, is used instead of Kubeconfig (a copy of it,
	// on each Record): the node agent's service account, whose token
	// file client-go reads again as kubelet rotates it.
	Config *rest.Config
	// Timeout bounds a whole Record: reading the kubeconfig, connecting,
	// and every request.
	Timeout time.Duration
	// UserAgent is sent with the requests; empty means client-go's.
	UserAgent string
	// Log receives the warnings the API server sends in response headers
	// (for example about a deprecated API); nil drops them.
	Log *slog.Logger
}

// Record creates the Event for ev, or counts one more occurrence on the
// Event a previous Record created for the same pod and reason (updating
// its message, action and lastTimestamp). It returns within Timeout
// whatever the API server does — hangs, refuses, answers 500 or 401 — with
// an error saying what failed; it retries nothing beyond a conflicting
// concurrent update, and nothing after the deadline.
func (r *Recorder) Record(ctx context.Context, ev podevent.Event) (podevent.Outcome, error) {
	if err := ev.Validate(); err != nil {
		return podevent.Outcome{}, err
	}
	if r.Timeout <= 0 {
		return podevent.Outcome{}, fmt.Errorf("record event: timeout %v is not positive", r.Timeout)
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	// The work runs apart so that nothing it might block on (a kubeconfig
	// on a hung filesystem, a credential plugin) can hold the caller past
	// the deadline; once the deadline has passed its result is dropped.
	type result struct {
		out podevent.Outcome
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := r.record(ctx, ev)
		done <- result{out, err}
	}()
	select {
	case res := <-done:
		return res.out, res.err
	case <-ctx.Done():
		return podevent.Outcome{}, fmt.Errorf("record event about pod %s: gave up after %v: %w", ev.Pod, r.Timeout, ctx.Err())
	}
}
