package plugin

import (
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fibguard/fibguard/checker"
	"github.com/fibguard/fibguard/internal/apiservertest"
)

// podArgs is the CNI_ARGS of containerd for a pod with a UID.
const podArgs = "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;" +
	"K8S_POD_INFRA_CONTAINER_ID=4f1f5c7e2a0b;K8S_POD_UID=8a1c6f0e-3b0d-4d5e-9a61-2f0c4b7d9e11"

func TestNodeName(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "NODE_NAME" {
				return v
			}
			return ""
		}
	}
	host := func(h string, err error) func() (string, error) { return func() (string, error) { return h, err } }
	for _, tc := range []struct {
		name       string
		configured string
		getenv     func(string) string
		hostname   func() (string, error)
		want       string // "": an error
	}{
		{"configured wins", "node-a", env("node-b"), host("node-c", nil), "node-a"},
		{"NODE_NAME", "", env("node-b"), host("node-c", nil), "node-b"},
		{"host name lowercased, as kubelet does", "", env(""), host("Worker-7.Example.com\n", nil), "worker-7.example.com"},
		{"no host name", "", env(""), host("", errors.New("uname failed")), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := nodeName(tc.configured, tc.getenv, tc.hostname)
			if tc.want == "" {
				if err == nil {
					t.Errorf("got %q, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestErrorLines(t *testing.T) {
	got := errorLines([]checker.Finding{
		{Code: "FG040", Severity: checker.SeverityWarning, Message: "model and kernel disagree"},
		{Code: "FG001", Severity: checker.SeverityError, Message: "pod IP 127.16.0.2 is unreachable"},
		{Code: "FG020", Severity: checker.SeverityError, Message: "pod IP 127.16.0.2 is a loopback address"},
	})
	want := []string{"FG001 pod IP 127.16.0.2 is unreachable", "FG020 pod IP 127.16.0.2 is a loopback address"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
}

// fakeAPI is an HTTPS server standing in for an API server that
// misbehaves, with a kubeconfig for it; it counts the requests it gets.
type fakeAPI struct {
	kubeconfig string
	requests   atomic.Int32
}

// newFakeAPI serves handler, after counting the request.
func newFakeAPI(t *testing.T, handler http.HandlerFunc) *fakeAPI {
	t.Helper()
	f := &fakeAPI{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		handler(w, r)
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections() // ends hanging handlers
		srv.Close()
	})
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	f.kubeconfig = apiservertest.WriteKubeconfigFile(t, srv.URL, ca, "test-token")
	return f
}

// apiFails is an API server that answers every request with an error
// status.
func apiFails(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":%q,"code":%d}`,
			http.StatusText(code), code)
	}
}

// readLog returns the records of a JSON log file.
func readLog(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	for line := range strings.Lines(string(data)) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		recs = append(recs, rec)
	}
	return recs
}

// findRecord returns the last record whose msg starts with prefix.
func findRecord(recs []map[string]any, prefix string) map[string]any {
	for _, r := range slices.Backward(recs) {
		if msg, _ := r["msg"].(string); strings.HasPrefix(msg, prefix) {
			return r
		}
	}
	return nil
}

// TestNoEvent: the paths that must not talk to the API server: an
// accepted pod, DEL, events off, no pod in CNI_ARGS, and no kubeconfig
// (which says why at debug level).
func TestNoEvent(t *testing.T) {
	healthy := newBridgePodNet(t, "10.22.0.1/24", "10.22.0.2/24")
	broken := newBridgePodNet(t, "127.16.0.1/16", "127.16.0.2/16")
	for _, tc := range []struct {
		name string
		pn   *podNet
		cmd  string
		conf map[string]any
		args string
		// debug is a debug record the log must hold.
		debug string
	}{
		{"accepted ADD", healthy, "ADD", nil, podArgs, ""},
		{"accepted CHECK", healthy, "CHECK", nil, podArgs, ""},
		{"DEL of a rejected pod", broken, "DEL", nil, podArgs, ""},
		{"events off", broken, "ADD", map[string]any{"events": "off"}, podArgs, "no Kubernetes event: events off"},
		{"no pod in CNI_ARGS", broken, "ADD", nil, "IgnoreUnknown=1", "no Kubernetes event: CNI_ARGS names no pod"},
		{"no kubeconfig", broken, "ADD", map[string]any{"kubeconfig": nil}, podArgs, "no Kubernetes event: no kubeconfig configured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFakeAPI(t, apiFails(http.StatusInternalServerError))
			logFile := filepath.Join(t.TempDir(), "fibguard.log")
			conf := map[string]any{
				"prevResult": tc.pn.prevResult(t, "1.0.0"), "logFile": logFile, "logLevel": "debug",
				"kubeconfig": fake.kubeconfig, "nodeName": "node-1",
			}
			for k, v := range tc.conf {
				conf[k] = v
			}
			p, _, _ := inProcess(tc.pn)
			args := cmdArgs(tc.pn.pod.Path(), confJSON(t, "1.0.0", conf))
			args.Args = tc.args
			var err error
			switch tc.cmd {
			case "ADD":
				err = p.Add(args)
			case "CHECK":
				err = p.Check(args)
			case "DEL":
				err = p.Del(args)
			}
			if tc.pn == healthy || tc.cmd == "DEL" {
				if err != nil {
					t.Fatalf("%s: %v", tc.cmd, err)
				}
			} else if err == nil {
				t.Fatalf("%s of the broken pod succeeded", tc.cmd)
			}
			if n := fake.requests.Load(); n != 0 {
				t.Errorf("the API server saw %d requests, want none", n)
			}
			if tc.debug != "" {
				if findRecord(readLog(t, logFile), tc.debug) == nil {
					t.Errorf("the log does not say %q", tc.debug)
				}
			}
		})
	}
}
