// Command fibguard-event records the Kubernetes Events of the fibguard
// CNI plugin. The plugin runs it only when it rejects a pod (or, in warn
// mode, would have), so that the plugin binary itself does not link
// k8s.io/client-go and its accept path pays no client start-up cost; the
// installer puts it next to the plugin in the CNI bin dir.
//
// It reads one podevent.Request (JSON) on stdin, records its Events with
// the kubeconfig it names (package podevent/kube), and prints a
// podevent.Result on stdout. It gives up shortly before the request's
// deadline, when the plugin kills it, so that the result can still say
// what failed. Exit status: 0 every Event recorded, 1 some not (the
// result says why), 2 the request was unreadable (stderr says why).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/fibguard/fibguard/internal/version"
	"github.com/fibguard/fibguard/podevent"
	"github.com/fibguard/fibguard/podevent/kube"
)

func main() {
	version.ExitIfRequested("fibguard-event", os.Args[1:])
	os.Exit(run(os.Stdin, os.Stdout, os.Stderr))
}

// maxReserve is the most of the time left that is kept back for printing
// the result before the plugin's deadline.
const maxReserve = 100 * time.Millisecond

// run does the work of main on the given streams and returns the exit
// status.
func run(stdin io.Reader, stdout, stderr io.Writer) int {
	req, err := podevent.ReadRequest(stdin)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "fibguard-event:", err) // nothing to do if stderr fails too
		return 2
	}
	left := time.Until(req.Deadline)
	deadline := req.Deadline.Add(-min(maxReserve, left/10))
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()

	var warnings warningList
	rec := &kube.Recorder{
		Kubeconfig: req.Kubeconfig,
		UserAgent:  req.UserAgent,
		Log:        slog.New(&warnings),
	}
	var res podevent.Result
	status := 0
	for _, ev := range req.Events {
		rec.Timeout = time.Until(deadline)
		var r podevent.Recorded
		if rec.Timeout <= 0 {
			r.Error = fmt.Sprintf("record event about pod %s: no time left before the deadline", ev.Pod)
		} else if out, err := rec.Record(ctx, ev); err != nil {
			r.Error = err.Error()
		} else {
			r.Outcome = out
		}
		if r.Error != "" {
			status = 1
		}
		res.Recorded = append(res.Recorded, r)
	}
	res.Warnings = warnings.all()
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		_, _ = fmt.Fprintln(stderr, "fibguard-event: print result:", err) // the plugin logs the failure
		return 2
	}
	return status
}

// warningList is a slog handler that keeps the messages of the records
// logged to it: the Recorder logs the API server's warnings, which go
// into the Result for the plugin's log.
type warningList struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningList) Enabled(context.Context, slog.Level) bool { return true }

func (w *warningList) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		msg += " " + a.String()
		return true
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
	return nil
}

// The Recorder passes its attributes with each record, so these are not
// needed to keep them.
func (w *warningList) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warningList) WithGroup(string) slog.Handler      { return w }

func (w *warningList) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.msgs
}
