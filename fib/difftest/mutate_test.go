package difftest

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/internal/nstest"
)

// world is what a random plan made, for the changes that follow it.
type world struct {
	m *fib.Model
	// peer maps each veth to the other end of its pair.
	peer map[string]string
}

// mutations generates random changes of a set-up namespace, as `ip`
// commands and the what-if changes they are: route and address deletion,
// links going down and up, and the carrier a veth loses and regains with
// its peer.
func mutations(seed uint64, w world) []step {
	r := rand.New(rand.NewPCG(seed, 13))
	var steps []step
	for range 2 + r.IntN(5) {
		var s step
		var ok bool
		switch r.IntN(4) {
		case 0:
			s, ok = delRouteStep(r, w.m)
		case 1:
			s, ok = delAddrStep(r, w.m)
		default:
			s, ok = linkStep(r, w)
		}
		if !ok {
			continue
		}
		if err := w.m.Apply(s.changes...); err != nil {
			panic(fmt.Sprintf("seed %d: %s: %v", seed, s.ip, err))
		}
		steps = append(steps, s)
	}
	return steps
}

// delRouteStep deletes a random route of table main other than lo's.
func delRouteStep(r *rand.Rand, m *fib.Model) (step, bool) {
	var routes []fib.Route
	for rt := range m.Routes() {
		if rt.Table == fib.TableMain && rt.Dev() != "lo" && !rt.Dst.Addr().IsLinkLocalUnicast() {
			routes = append(routes, rt)
		}
	}
	if len(routes) == 0 {
		return step{}, false
	}
	rt := routes[r.IntN(len(routes))]
	del := fib.Route{Dst: rt.Dst, Metric: rt.Metric, NextHops: []fib.NextHop{{Link: rt.Dev()}}}
	cmd := fmt.Sprintf("route del %s dev %s metric %d", rt.Dst, rt.Dev(), rt.Metric)
	return step{ip: []string{cmd}, changes: []fib.Change{fib.DelRoute{Route: del}}}, true
}

// delAddrStep deletes a random address other than lo's.
func delAddrStep(r *rand.Rand, m *fib.Model) (step, bool) {
	var addrs []fib.Address
	for a := range m.Addrs() {
		if a.Link != "lo" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return step{}, false
	}
	a := addrs[r.IntN(len(addrs))]
	return step{ip: []string{fmt.Sprintf("addr del %s dev %s", a.Prefix, a.Link)},
		changes: []fib.Change{fib.DelAddress{Address: fib.Address{Prefix: a.Prefix, Link: a.Link}}}}, true
}

// linkStep turns a random device down or up: a veth's peer loses carrier
// when it goes down and regains it when both ends are up; a bridge without
// ports has carrier once up.
func linkStep(r *rand.Rand, w world) (step, bool) {
	var devs []fib.Link
	for l := range w.m.Links() {
		if l.Name != "lo" {
			devs = append(devs, l)
		}
	}
	if len(devs) == 0 {
		return step{}, false
	}
	l := devs[r.IntN(len(devs))]
	peer, isVeth := w.peer[l.Name]
	if l.Up {
		s := step{ip: []string{"link set " + l.Name + " down"}, changes: []fib.Change{fib.LinkDown{Name: l.Name}}}
		if isVeth {
			s.changes = append(s.changes, fib.Carrier{Name: peer})
		}
		return s, true
	}
	s := step{ip: []string{"link set " + l.Name + " up"}}
	if l.Kind == fib.KindBridge {
		s.changes = append(s.changes, fib.Carrier{Name: l.Name, On: true})
	}
	if isVeth {
		p, _ := w.m.Link(peer)
		s.changes = append(s.changes, fib.Carrier{Name: l.Name, On: p.Up})
		if p.Up {
			s.changes = append(s.changes, fib.Carrier{Name: peer, On: true})
		}
	}
	s.changes = append(s.changes, fib.LinkUp{Name: l.Name})
	return s, true
}

// mutationQueries are the destinations worth asking after changes: every
// address a plan used and the one after it, and an address in each
// route's destination, of the model before and after the changes.
func mutationQueries(models ...*fib.Model) []fib.Query {
	seen := map[netip.Addr]bool{}
	var qs []fib.Query
	add := func(a netip.Addr) {
		if a.IsValid() && !seen[a] {
			seen[a] = true
			qs = append(qs, fib.Query{Dst: a})
		}
	}
	for _, m := range models {
		for a := range m.Addrs() {
			add(a.Prefix.Addr())
			add(a.Prefix.Addr().Next())
		}
		for rt := range m.Routes() {
			if !rt.Dst.Addr().IsLinkLocalUnicast() && !rt.Dst.Addr().IsMulticast() {
				add(rt.Dst.Addr().Next())
			}
		}
	}
	return qs
}

// TestWhatIfChangesMatchKernel sets up random plans, then applies random
// changes (route and address deletion, links down and up, carrier) both to
// the kernel and, as what-if changes, to the model of the set-up
// namespace: the routes and addresses must come out the same, and every
// lookup of the planned addresses and routes must get the kernel's answer.
func TestWhatIfChangesMatchKernel(t *testing.T) {
	setups, steps, queries, disagree := 0, 0, 0, 0
	for seed := range uint64(seeds()) {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			ns := nstest.NewWithLoUp(t)
			for _, k := range []string{"net.ipv4.conf.all.promote_secondaries", "net.ipv4.conf.default.promote_secondaries"} {
				if err := ns.Sysctl(k, "0"); err != nil {
					t.Fatal(err)
				}
			}
			w, setupCmds := applyPlan(t, ns, seed)
			before := w.m.Clone()
			muts := mutations(seed, w)
			var cmds []string
			var changes []fib.Change
			for _, s := range muts {
				cmds = append(cmds, s.ip...)
				changes = append(changes, s.changes...)
			}
			script := "ip " + strings.Join(append(setupCmds, cmds...), "\n  ip ")
			if err := ns.Batch(cmds); err != nil {
				t.Fatalf("changes: %v\n  %s", err, script)
			}
			want := settle(t, ns)
			got := before.Clone()
			if err := got.Apply(changes...); err != nil {
				t.Fatalf("apply: %v", err)
			}
			gotRoutes, gotAddrs := comparable(got)
			wantRoutes, wantAddrs := comparable(want)
			if d := lineDiff(gotRoutes, wantRoutes) + lineDiff(gotAddrs, wantAddrs); d != "" {
				t.Errorf("what-if (-) and kernel (+) differ after:\n  %s\n%s", script, d)
			}
			for _, q := range mutationQueries(before, got) {
				queries++
				if _, ok := compare(t, ns, got, q, script); !ok {
					disagree++
				}
			}
			setups++
			steps += len(muts)
		})
	}
	t.Logf("%d setups, %d changes, %d lookups after them, %d disagreements", setups, steps, queries, disagree)
}

// applyPlan builds a random plan in the namespace and returns the loaded
// model with the veth pairs, and the plan's commands.
func applyPlan(t *testing.T, ns *nstest.NS, seed uint64) (world, []string) {
	t.Helper()
	var cmds []string
	for _, s := range plan(seed) {
		cmds = append(cmds, s.ip...)
	}
	if err := ns.Batch(cmds); err != nil {
		t.Fatalf("setup: %v", err)
	}
	w := world{m: settle(t, ns), peer: map[string]string{}}
	for l := range w.m.Links() {
		if a, ok := strings.CutPrefix(l.Name, "va"); ok {
			w.peer[l.Name], w.peer["vb"+a] = "vb"+a, l.Name
		}
	}
	if lo, _ := w.m.Link("lo"); !lo.Up {
		t.Fatal("lo is not up")
	}
	return w, cmds
}
