package plugin

import (
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/fibguard/fibguard/podevent"
)

// apiHangs is an API server that never answers.
func apiHangs(_ http.ResponseWriter, r *http.Request) {
	// The server notices a closed connection only once the body is read.
	_, _ = io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
}

// writeScript writes an executable shell script and returns its path.
func writeScript(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), podevent.EventBinary)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestEventDoesNotChangeTheVerdict: an API server that hangs, fails or
// refuses the credentials, an event binary that is missing, hangs past
// its deadline (with a child that holds its output open) or answers
// nonsense, change nothing but a log line: ADD rejects in enforce mode
// and passes in warn mode, as without Kubernetes, within eventTimeout
// plus a margin.
func TestEventDoesNotChangeTheVerdict(t *testing.T) {
	pn := newBridgePodNet(t, "127.16.0.1/16", "127.16.0.2/16")
	prev := pn.prevResult(t, "1.0.0")
	const eventTimeout = 400 * time.Millisecond
	// margin bounds the checks themselves and a loaded machine: this is
	// the bound of a timeout path, not a measure of speed.
	const margin = 1500 * time.Millisecond
	real := eventBin(t)

	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		// binary returns the event binary to run; nil: the real one.
		binary func(t *testing.T) string
		// logged matches the logged error.
		logged string
	}{
		// The context's deadline or client-go's own timeout, set to the
		// same time, whichever fires first.
		{name: "API hangs", handler: apiHangs, logged: "deadline exceeded|Timeout exceeded"},
		{name: "API 500", handler: apiFails(http.StatusInternalServerError), logged: "Internal Server Error"},
		{name: "API 401", handler: apiFails(http.StatusUnauthorized), logged: "Unauthorized"},
		{name: "no event binary", binary: func(t *testing.T) string { return filepath.Join(t.TempDir(), "absent") }, logged: "no such file"},
		{name: "event binary hangs", binary: func(t *testing.T) string { return writeScript(t, "sleep 30 & exec sleep 30") }, logged: "killed at the deadline"},
		{name: "event binary answers nonsense", binary: func(t *testing.T) string { return writeScript(t, "echo '{]'") }, logged: "unreadable result"},
		{name: "event binary fails", binary: func(t *testing.T) string { return writeScript(t, "echo 'out of luck' >&2; exit 3") }, logged: "out of luck"},
	} {
		for _, mode := range []string{"enforce", "warn"} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				handler := tc.handler
				if handler == nil {
					handler = apiFails(http.StatusInternalServerError)
				}
				fake := newFakeAPI(t, handler)
				logFile := filepath.Join(t.TempDir(), "fibguard.log")
				stdin := confJSON(t, "1.0.0", map[string]any{
					"prevResult": prev, "mode": mode, "logFile": logFile,
					"kubeconfig": fake.kubeconfig, "eventTimeout": eventTimeout.String(), "nodeName": "node-1",
				})
				p, stdout, _ := inProcess(pn)
				p.EventBinary = real
				if tc.binary != nil {
					p.EventBinary = tc.binary(t)
				}
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
				if tc.binary == nil && fake.requests.Load() == 0 {
					t.Error("the API server saw no request")
				}
				rec := findRecord(readLog(t, logFile), "cannot record Kubernetes event")
				msg, _ := rec["error"].(string)
				if rec == nil || rec["level"] != "ERROR" || rec["pod"] != "default/web-0" || !regexp.MustCompile(tc.logged).MatchString(msg) {
					t.Errorf("no error record saying %q about the event in the log: %v", tc.logged, rec)
				}
				t.Logf("ADD took %v; logged: %s", took, msg)
			})
		}
	}
}

// TestEventBinarySearch: without Plugin.EventBinary, the event binary is
// looked for next to the running executable, then in CNI_PATH; none
// found is an error naming the places looked in.
func TestEventBinarySearch(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(self), podevent.EventBinary)); err == nil {
		t.Skipf("the test binary's directory holds a %s", podevent.EventBinary)
	}
	inPath := filepath.Dir(writeScript(t, "exit 0"))
	p := &Plugin{}
	if got, err := p.eventBinary("/nonexistent:" + inPath); err != nil || got != filepath.Join(inPath, podevent.EventBinary) {
		t.Errorf("eventBinary = %q, %v; want the one in CNI_PATH", got, err)
	}
	_, err = p.eventBinary(t.TempDir())
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), filepath.Dir(self)) {
		t.Errorf("eventBinary without one: %v, want ErrNotExist naming %s", err, filepath.Dir(self))
	}
}
