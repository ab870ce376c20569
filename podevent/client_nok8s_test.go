//go:build fibguard_nok8s

package podevent

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestRecordNotBuilt: without client-go, Record says so.
func TestRecordNotBuilt(t *testing.T) {
	r := &Recorder{Kubeconfig: "/nonexistent", Timeout: time.Second}
	ev := Event{Pod: Pod{"default", "web-0", "u"}, Reason: ReasonRejected, Node: "node-1"}
	if _, err := r.Record(context.Background(), ev); !errors.Is(err, ErrNotBuilt) {
		t.Errorf("Record: %v, want ErrNotBuilt", err)
	}
}
