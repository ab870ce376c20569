//go:build !fibguard_nok8s

package plugin

import (
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
)

// apiHangs is an API server that never answers.
func apiHangs(_ http.ResponseWriter, r *http.Request) {
	// The server notices a closed connection only once the body is read.
	_, _ = io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
}

// TestEventDoesNotChangeTheVerdict: an API server that hangs, fails or
// refuses the credentials changes nothing but a log line: ADD rejects in
// enforce mode and passes in warn mode, as without Kubernetes, within
// eventTimeout plus a margin.
func TestEventDoesNotChangeTheVerdict(t *testing.T) {
	pn := newBridgePodNet(t, "127.16.0.1/16", "127.16.0.2/16")
	prev := pn.prevResult(t, "1.0.0")
	const eventTimeout = 400 * time.Millisecond
	// margin bounds the checks themselves and a loaded machine: this is
	// the bound of a timeout path, not a measure of speed.
	const margin = 1500 * time.Millisecond

	for _, api := range []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"hangs", apiHangs},
		{"500", apiFails(http.StatusInternalServerError)},
		{"401", apiFails(http.StatusUnauthorized)},
	} {
		for _, mode := range []string{"enforce", "warn"} {
			t.Run(api.name+"/"+mode, func(t *testing.T) {
				fake := newFakeAPI(t, api.handler)
				logFile := filepath.Join(t.TempDir(), "fibguard.log")
				stdin := confJSON(t, "1.0.0", map[string]any{
					"prevResult": prev, "mode": mode, "logFile": logFile,
					"kubeconfig": fake.kubeconfig, "eventTimeout": eventTimeout.String(), "nodeName": "node-1",
				})
				p, stdout, _ := inProcess(pn)
				args := cmdArgs(pn.pod.Path(), stdin)
				args.Args = podArgs
				start := time.Now()
				err := p.Add(args)
				took := time.Since(start)

				if took > eventTimeout+margin {
					t.Errorf("ADD took %v, more than eventTimeout %v + %v", took, eventTimeout, margin)
				}
				if mode == "enforce" {
					var e *types.Error
					if !errors.As(err, &e) || e.Code != CodeRejected {
						t.Fatalf("ADD: %v, want a rejection (code %d)", err, CodeRejected)
					}
				} else {
					if err != nil {
						t.Fatalf("ADD in warn mode: %v", err)
					}
					if same, err := sameJSON(stdout.Bytes(), prev); err != nil || !same {
						t.Errorf("result is not the prevResult (%v): %s", err, stdout)
					}
				}
				if fake.requests.Load() == 0 {
					t.Error("the API server saw no request")
				}
				rec := findRecord(readLog(t, logFile), "cannot record Kubernetes event")
				if rec == nil || rec["level"] != "ERROR" || rec["pod"] != "default/web-0" || rec["error"] == "" {
					t.Errorf("no error record about the event in the log: %v", rec)
				}
			})
		}
	}
}
