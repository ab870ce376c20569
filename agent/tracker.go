package agent

import (
	"slices"

	"github.com/fibguard/fibguard/checker"
)

// Kind is what happened to a pod's network between two rounds.
type Kind string

// Kinds of Transition.
const (
	// Broken: it passed (or was new) and now has error findings.
	Broken Kind = "broken"
	// Restored: it had error findings and now has none.
	Restored Kind = "restored"
	// StillBroken: it stays broken, for other reasons than before.
	StillBroken Kind = "still-broken"
)

// Transition is a pod's network changing state.
type Transition struct {
	Kind    Kind
	Verdict Verdict
	// Changes are what the node saw change since the round before, in
	// words ("address 10.244.0.5/32 added on eth0"), oldest first; empty
	// when the agent has just started or could not tell.
	Changes []string
}

// tracker remembers each attachment's error codes from round to round.
type tracker struct {
	codes map[string][]checker.Code // by Attachment.File
}

func newTracker() *tracker { return &tracker{codes: map[string][]checker.Code{}} }

// update takes a round's verdicts and returns the transitions. An
// attachment seen for the first time that is broken is a transition too
// (the agent may start after the break); one that is gone is forgotten.
func (t *tracker) update(verdicts []Verdict, changes []string) []Transition {
	var out []Transition
	seen := make(map[string]bool, len(verdicts))
	for _, v := range verdicts {
		key := v.Attachment.File
		seen[key] = true
		now := v.Codes()
		kind, ok := kindOf(t.codes[key], now)
		t.codes[key] = now
		if ok {
			out = append(out, Transition{Kind: kind, Verdict: v, Changes: changes})
		}
	}
	for key := range t.codes {
		if !seen[key] {
			delete(t.codes, key)
		}
	}
	return out
}

// kindOf says how the error codes changed between two rounds, and false
// when that is no transition.
func kindOf(before, now []checker.Code) (Kind, bool) {
	switch {
	case len(now) > 0 && len(before) == 0:
		return Broken, true
	case len(now) == 0 && len(before) > 0:
		return Restored, true
	case len(now) > 0 && !slices.Equal(now, before):
		return StillBroken, true
	}
	return "", false
}
