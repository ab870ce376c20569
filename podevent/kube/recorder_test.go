package kube

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/fibguard/fibguard/internal/apiservertest"
	"github.com/fibguard/fibguard/podevent"
)

// testEvent is a valid Event about a pod with a UID.
var testEvent = podevent.Event{
	Pod:     podevent.Pod{Namespace: "default", Name: "web-0", UID: "8a1c6f0e-3b0d-4d5e-9a61-2f0c4b7d9e11"},
	Reason:  podevent.ReasonRejected,
	Message: "FG001 pod IP 127.16.0.2 is unreachable from the host",
	Action:  "ADD",
	Node:    "node-1",
}

// tlsServer serves handler over TLS and returns a kubeconfig for it and a
// count of the requests it received.
func tlsServer(t *testing.T, handler http.HandlerFunc) (string, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		handler(w, r)
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections() // ends hanging handlers
		srv.Close()
	})
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return apiservertest.WriteKubeconfigFile(t, srv.URL, ca, "test-token"), &n
}

// hang is a handler that answers nothing until the connection closes.
func hang(_ http.ResponseWriter, r *http.Request) {
	// The server notices a closed connection only once the body is read.
	_, _ = io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
}

// status writes a metav1.Status error as the API server does.
func status(w http.ResponseWriter, code int, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"kind": "Status", "apiVersion": "v1", "status": "Failure",
		"message": strings.ToLower(reason), "reason": reason, "code": code,
	})
}

// TestRecordFailures: whatever the API server does wrong, Record returns
// an error within its timeout plus a small margin, and never retries.
func TestRecordFailures(t *testing.T) {
	const timeout = 500 * time.Millisecond
	// margin is generous: it bounds a timeout path on a shared machine,
	// it does not measure speed.
	const margin = 500 * time.Millisecond

	// A listener that never accepts: the kernel completes the TCP
	// handshake, then nothing answers the TLS handshake.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = silent.Close() })
	// A port nothing listens on: connections are refused.
	refusing, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedAddr := refusing.Addr().String()
	if err := refusing.Close(); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name       string
		kubeconfig func(t *testing.T) (string, *atomic.Int32)
		// is checks the error's kind; nil: any error.
		is func(error) bool
		// requests is the number of requests the server must see; -1:
		// not counted.
		requests int32
	}{
		{"hangs", func(t *testing.T) (string, *atomic.Int32) {
			return tlsServer(t, hang)
		}, func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }, 1},
		{"500 with Retry-After", func(t *testing.T) (string, *atomic.Int32) {
			return tlsServer(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "1")
				status(w, http.StatusInternalServerError, "InternalError")
			})
		}, apierrors.IsInternalError, 1},
		{"401", func(t *testing.T) (string, *atomic.Int32) {
			return tlsServer(t, func(w http.ResponseWriter, _ *http.Request) { status(w, http.StatusUnauthorized, "Unauthorized") })
		}, apierrors.IsUnauthorized, 1},
		{"403", func(t *testing.T) (string, *atomic.Int32) {
			return tlsServer(t, func(w http.ResponseWriter, _ *http.Request) { status(w, http.StatusForbidden, "Forbidden") })
		}, apierrors.IsForbidden, 1},
		{"TLS handshake never answered", func(t *testing.T) (string, *atomic.Int32) {
			return apiservertest.WriteKubeconfigFile(t, "https://"+silent.Addr().String(), nil, "test-token"), nil
		}, func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }, -1},
		{"connection refused", func(t *testing.T) (string, *atomic.Int32) {
			return apiservertest.WriteKubeconfigFile(t, "https://"+refusedAddr, nil, "test-token"), nil
		}, nil, -1},
		{"untrusted certificate", func(t *testing.T) (string, *atomic.Int32) {
			srv := httptest.NewUnstartedServer(http.NotFoundHandler())
			srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
			srv.StartTLS()
			t.Cleanup(srv.Close)
			return apiservertest.WriteKubeconfigFile(t, srv.URL, nil, "test-token"), nil
		}, nil, -1},
		{"no kubeconfig file", func(t *testing.T) (string, *atomic.Int32) {
			return filepath.Join(t.TempDir(), "absent"), nil
		}, func(err error) bool { return errors.Is(err, os.ErrNotExist) }, -1},
		{"kubeconfig not YAML", func(t *testing.T) (string, *atomic.Int32) {
			path := filepath.Join(t.TempDir(), "kubeconfig")
			if err := os.WriteFile(path, []byte("{not yaml: ["), 0o600); err != nil {
				t.Fatal(err)
			}
			return path, nil
		}, nil, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kubeconfig, requests := tc.kubeconfig(t)
			r := &Recorder{Kubeconfig: kubeconfig, Timeout: timeout}
			start := time.Now()
			out, err := r.Record(context.Background(), testEvent)
			took := time.Since(start)
			if err == nil {
				t.Fatalf("Record succeeded: %+v", out)
			}
			t.Logf("%v after %v", err, took)
			if took > timeout+margin {
				t.Errorf("Record took %v, more than the timeout %v + %v", took, timeout, margin)
			}
			if tc.is != nil && !tc.is(err) {
				t.Errorf("error %v (%T) is not of the expected kind", err, err)
			}
			if tc.requests >= 0 {
				if got := requests.Load(); got != tc.requests {
					t.Errorf("the server saw %d requests, want %d (no retries)", got, tc.requests)
				}
			}
		})
	}
}

// TestRecordInvalid: an invalid Event or Recorder is refused before any
// client is built.
func TestRecordInvalid(t *testing.T) {
	kubeconfig, requests := tlsServer(t, func(w http.ResponseWriter, _ *http.Request) { status(w, 500, "InternalError") })
	bad := testEvent
	bad.Node = ""
	for _, tc := range []struct {
		name string
		r    *Recorder
		ev   podevent.Event
	}{
		{"invalid event", &Recorder{Kubeconfig: kubeconfig, Timeout: time.Second}, bad},
		{"no timeout", &Recorder{Kubeconfig: kubeconfig}, testEvent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.r.Record(context.Background(), tc.ev); err == nil {
				t.Error("Record succeeded")
			}
		})
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("the server saw %d requests, want none", n)
	}
}
