package checker

import (
	"fmt"
	"strings"

	"github.com/fibguard/fibguard/fib"
)

// judgePaths judges an answer with judge, which records at most one
// finding; a multipath answer (fib.Result.Paths) once per next hop, since
// the kernel sends each flow through any of them. The first next hop that
// makes a finding gives it, and its message names every next hop that
// makes one: a pod is as unreachable as its worst next hop.
func (r *run) judgePaths(res *fib.Result, judge func(*fib.Result)) {
	if len(res.Paths) < 2 {
		judge(res)
		return
	}
	kept := -1
	var bad []fib.Path
	for i, p := range res.Paths {
		pr := res.PathResult(i)
		pr.Trace = res.Trace
		n := len(r.findings)
		judge(&pr)
		if len(r.findings) == n {
			continue
		}
		bad = append(bad, p)
		if kept < 0 {
			kept = n
		} else {
			r.findings = r.findings[:n]
		}
	}
	if kept >= 0 {
		f := &r.findings[kept]
		f.Message += multipathNote(len(res.Paths), bad)
	}
}

// multipathNote tells which next hops of a multipath route a finding is
// about.
func multipathNote(total int, bad []fib.Path) string {
	hops := make([]string, len(bad))
	for i, p := range bad {
		hops[i] = p.String()
	}
	if len(bad) == total {
		return fmt.Sprintf(" (multipath route: all %d next hops: %s)", total, strings.Join(hops, ", "))
	}
	return fmt.Sprintf(" (multipath route: the kernel picks one of %d next hops per flow; %d of them do so: %s)", total, len(bad), strings.Join(hops, ", "))
}
