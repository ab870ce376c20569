package agent

import (
	"context"
	"log/slog"
	"strings"
)

// LogSink is a Sink that logs each transition, and each cache file a
// round could not read, once for as long as it stays unreadable.
type LogSink struct {
	Log    *slog.Logger
	failed map[string]bool // the errors of the last round
}

// Transition logs a pod's network changing state.
func (s *LogSink) Transition(t Transition) {
	a := t.Verdict.Attachment
	level := slog.LevelWarn
	if t.Kind == Restored {
		level = slog.LevelInfo
	}
	var codes []string
	for _, c := range t.Verdict.Codes() {
		codes = append(codes, string(c))
	}
	s.Log.Log(context.Background(), level, "pod network "+string(t.Kind),
		"pod", a.Pod.String(), "container", a.ContainerID, "network", a.Network, "ifname", a.IfName,
		"codes", strings.Join(codes, ","), "after", strings.Join(t.Changes, "; "))
}

// NodeTransition logs the node's pod networks changing state, with the
// findings.
func (s *LogSink) NodeTransition(t NodeTransition) {
	level := slog.LevelWarn
	if t.Kind == Restored {
		level = slog.LevelInfo
	}
	var lines []string
	for _, f := range t.Verdict.Findings {
		lines = append(lines, f.Line())
	}
	s.Log.Log(context.Background(), level, "node pod networks "+string(t.Kind),
		"findings", strings.Join(lines, "; "), "after", strings.Join(t.Changes, "; "))
}

// Round logs the cache files that could not be read and were readable at
// the round before.
func (s *LogSink) Round(r Round) {
	now := make(map[string]bool, len(r.Errors))
	for _, err := range r.Errors {
		msg := err.Error()
		now[msg] = true
		if !s.failed[msg] {
			s.Log.Warn("CNI result cache file skipped", "err", msg)
		}
	}
	s.failed = now
}
