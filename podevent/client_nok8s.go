//go:build fibguard_nok8s

package podevent

import "context"

// record reports that this build cannot record Events.
func (r *Recorder) record(context.Context, Event) (Outcome, error) {
	return Outcome{}, ErrNotBuilt
}
