package main

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fibguard/fibguard/internal/apiservertest"
	"github.com/fibguard/fibguard/podevent"
)

// tlsKubeconfig serves handler over TLS and returns a kubeconfig for it.
func tlsKubeconfig(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewTLSServer(handler)
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return apiservertest.WriteKubeconfigFile(t, srv.URL, ca, "t")
}

// TestRun: exit 2 and a reason on stderr for a request it cannot read;
// exit 1 and the API server's refusal in the result, per event, when it
// cannot record; the API server's warnings in the result.
func TestRun(t *testing.T) {
	kubeconfig := tlsKubeconfig(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Warning", `299 - "events are deprecated today"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403,"message":"no"}`))
	})
	ev := podevent.Event{Pod: podevent.Pod{Namespace: "default", Name: "web-0", UID: "u1"},
		Reason: podevent.ReasonRejected, Message: "FG001 x", Action: "ADD", Node: "node-1"}
	req := func(version int, events ...podevent.Event) string {
		b, err := json.Marshal(podevent.Request{Version: version, Kubeconfig: kubeconfig,
			Deadline: time.Now().Add(5 * time.Second), Events: events})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, tc := range []struct {
		name       string
		stdin      string
		wantStatus int
		wantStderr string
		// wantErrors is the number of events whose result is an error.
		wantErrors int
	}{
		{"not JSON", "nonsense", 2, "decode event request", 0},
		{"other version", req(99, ev), 2, "version 99", 0},
		{"refused", req(podevent.RequestVersion, ev, ev), 1, "", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			status := run(strings.NewReader(tc.stdin), &stdout, &stderr)
			if status != tc.wantStatus || !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Fatalf("status %d, stderr %q; want %d and %q", status, stderr.String(), tc.wantStatus, tc.wantStderr)
			}
			if status == 2 {
				if stdout.Len() != 0 {
					t.Errorf("stdout %q, want nothing", stdout.String())
				}
				return
			}
			var res podevent.Result
			if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
				t.Fatalf("result %q: %v", stdout.String(), err)
			}
			errs := 0
			for _, r := range res.Recorded {
				if strings.Contains(r.Error, "no") {
					errs++
				}
			}
			if errs != tc.wantErrors {
				t.Errorf("result %+v: %d errors, want %d", res, errs, tc.wantErrors)
			}
			if len(res.Warnings) == 0 || !strings.Contains(res.Warnings[0], "deprecated today") {
				t.Errorf("warnings %q lack the API server's", res.Warnings)
			}
		})
	}
}
