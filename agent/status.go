package agent

import (
	"log/slog"
	"strings"
	"time"

	"github.com/fibguard/fibguard/internal/nodestatus"
)

// StatusFile is a Sink that writes the node's verdict after every round
// to the file the plugin's STATUS reads when its entry says
// "nodeStatus": "on" (internal/nodestatus): not ready, with the findings,
// while a node-wide check has an error.
type StatusFile struct {
	Path string
	Log  *slog.Logger
	// failing remembers that the last write failed, to log a failure once.
	failing bool
}

// Transition does nothing: the file holds the state of every round.
func (s *StatusFile) Transition(Transition) {}

// NodeTransition does nothing: Round writes the state.
func (s *StatusFile) NodeTransition(NodeTransition) {}

// Round writes the node's verdict.
func (s *StatusFile) Round(r Round) {
	st := nodestatus.Status{Time: time.Now(), Ready: !(Verdict{Findings: r.Node.Findings}).Broken()}
	if !st.Ready {
		st.Reason = strings.Join(errorLines(r.Node.Findings, nil), "; ")
	}
	err := nodestatus.Write(s.Path, st)
	switch {
	case err != nil && !s.failing:
		s.Log.Error("writing the node status for the plugin's STATUS", "path", s.Path, "err", err)
	case err == nil && s.failing:
		s.Log.Info("the node status is written again", "path", s.Path)
	}
	s.failing = err != nil
}
