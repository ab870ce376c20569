package podevent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"
)

// EventBinary is the file name of the event binary, cmd/fibguard-event:
// the plugin runs it to record Events, and only when there is one to
// record, so that its own runs do not pay for the Kubernetes client.
const EventBinary = "fibguard-event"

// RequestVersion is the version of the Request format this code writes
// and reads. The installer replaces the plugin and the event binary one
// after the other, so for a moment they may differ: the event binary
// refuses a request of another version with an error the plugin logs,
// instead of misreading it.
const RequestVersion = 1

// Limits of a Request: a plugin run records one Event; these leave room
// without letting a broken writer make the event binary read without end.
const (
	MaxRequestSize = 1 << 20
	MaxEvents      = 16
)

// Request is what the plugin hands the event binary on its stdin, as one
// JSON object.
type Request struct {
	// Version is RequestVersion.
	Version int `json:"version"`
	// Kubeconfig is the absolute path of the kubeconfig to record with;
	// it is read anew by every event binary run, so a refreshed token is
	// used at once.
	Kubeconfig string `json:"kubeconfig"`
	// Deadline is when the plugin kills the event binary. The event binary
	// gives up a little earlier, so that it can still say what failed.
	Deadline time.Time `json:"deadline"`
	// UserAgent names the plugin in the API server's logs; empty means
	// client-go's.
	UserAgent string `json:"userAgent,omitempty"`
	// Events are recorded in order, sharing the deadline.
	Events []Event `json:"events"`
}

// Validate reports every problem of a request at once.
func (r Request) Validate() error {
	var problems []string
	if r.Version != RequestVersion {
		problems = append(problems, fmt.Sprintf("version %d: this fibguard-event reads version %d (plugin and event binary of different releases?)", r.Version, RequestVersion))
	}
	if !filepath.IsAbs(r.Kubeconfig) {
		problems = append(problems, fmt.Sprintf("kubeconfig %q: not an absolute path", r.Kubeconfig))
	}
	if r.Deadline.IsZero() {
		problems = append(problems, "deadline: missing")
	}
	if n := len(r.Events); n == 0 || n > MaxEvents {
		problems = append(problems, fmt.Sprintf("events: %d, want 1 to %d", n, MaxEvents))
	}
	for i, ev := range r.Events {
		if err := ev.Validate(); err != nil {
			problems = append(problems, fmt.Sprintf("events[%d]: %v", i, err))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("invalid event request: %s", strings.Join(problems, "; "))
	}
	return nil
}

// ReadRequest decodes and validates a Request from r, reading at most
// MaxRequestSize bytes. Unknown fields are an error: they would mean a
// plugin of another release, which the version should have said.
func ReadRequest(r io.Reader) (Request, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxRequestSize+1))
	if err != nil {
		return Request{}, fmt.Errorf("read event request: %w", err)
	}
	if len(data) > MaxRequestSize {
		return Request{}, fmt.Errorf("read event request: larger than %d bytes", MaxRequestSize)
	}
	var req Request
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return Request{}, fmt.Errorf("decode event request: %w", err)
	}
	if dec.More() {
		return Request{}, errors.New("decode event request: more than one JSON value")
	}
	return req, req.Validate()
}

// Result is what the event binary prints on stdout: what became of each
// Event of the Request, in the same order.
type Result struct {
	Recorded []Recorded `json:"recorded"`
	// Warnings are the warnings the API server sent in response headers
	// (for example about a deprecated API).
	Warnings []string `json:"warnings,omitempty"`
}

// Recorded is what became of one Event: its Outcome, or why it was not
// recorded.
type Recorded struct {
	Outcome
	Error string `json:"error,omitempty"`
}
