package difftest

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/internal/nstest"
)

// step is one planned change, as `ip` commands for the kernel and as
// fib changes for the what-if model.
type step struct {
	ip      []string
	changes []fib.Change
}

// plan generates a random addressing plan: bridges (no carrier) and veth
// pairs (carrier), up or down, with IPv4 addresses including 127.x, /31,
// /32 and secondaries, IPv6 addresses, and a few routes.
func plan(seed uint64) []step {
	r := rand.New(rand.NewPCG(seed, 11))
	var steps []step
	var devs []string
	var up []bool
	for i := range 1 + r.IntN(3) {
		name := fmt.Sprintf("br%d", i)
		isUp := r.IntN(5) > 0
		s := step{ip: []string{"link add " + name + " type bridge", "link set " + name + " addrgenmode none"},
			changes: []fib.Change{fib.AddLink{Link: fib.Link{Name: name, Kind: fib.KindBridge, Up: isUp, Carrier: isUp}}}}
		if isUp {
			s.ip = append(s.ip, "link set "+name+" up")
		}
		steps = append(steps, s)
		devs, up = append(devs, name), append(up, isUp)
	}
	for i := range r.IntN(2) {
		a, b := fmt.Sprintf("va%d", i), fmt.Sprintf("vb%d", i)
		steps = append(steps, step{
			ip: []string{"link add " + a + " type veth peer name " + b, "link set " + a + " addrgenmode none", "link set " + b + " addrgenmode none",
				"link set " + a + " up", "link set " + b + " up"},
			changes: []fib.Change{
				fib.AddLink{Link: fib.Link{Name: a, Kind: fib.KindVeth, Up: true, Carrier: true}},
				fib.AddLink{Link: fib.Link{Name: b, Kind: fib.KindVeth, Up: true, Carrier: true}},
			},
		})
		devs, up = append(devs, a, b), append(up, true, true)
	}
	used := map[netip.Addr]bool{}
	for range 2 + r.IntN(5) {
		i := r.IntN(len(devs))
		var p netip.Prefix
		if r.IntN(4) > 0 {
			pools := []string{"10.%d.%d.%d", "127.16.%d.%d", "192.168.%d.%d"}
			pool := pools[r.IntN(len(pools))]
			var s string
			if strings.Count(pool, "%d") == 3 {
				s = fmt.Sprintf(pool, r.IntN(2), r.IntN(2), 1+r.IntN(200))
			} else {
				s = fmt.Sprintf(pool, r.IntN(2), 1+r.IntN(200))
			}
			p = netip.PrefixFrom(netip.MustParseAddr(s), []int{8, 16, 24, 24, 30, 31, 32}[r.IntN(7)])
		} else {
			p = netip.PrefixFrom(netip.MustParseAddr(fmt.Sprintf("2001:db8:%x::%x", r.IntN(3), 1+r.IntN(200))), []int{64, 64, 128}[r.IntN(3)])
		}
		if used[p.Addr()] {
			continue
		}
		used[p.Addr()] = true
		extra := ""
		if p.Addr().Is6() {
			extra = " nodad"
		}
		steps = append(steps, step{
			ip:      []string{fmt.Sprintf("addr add %s dev %s%s", p, devs[i], extra)},
			changes: []fib.Change{fib.AddAddress{Address: fib.Address{Prefix: p, Link: devs[i]}}},
		})
	}
	routes := map[string]bool{}
	for range r.IntN(3) {
		i := r.IntN(len(devs))
		dst := netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 20, byte(r.IntN(4)), 0}), 24)
		metric := uint32(r.IntN(3) * 10)
		key := fmt.Sprint(dst, metric)
		if !up[i] || routes[key] {
			continue
		}
		routes[key] = true
		steps = append(steps, step{
			ip:      []string{fmt.Sprintf("route add %s dev %s metric %d", dst, devs[i], metric)},
			changes: []fib.Change{fib.AddRoute{Route: fib.Route{Dst: dst, Metric: metric, Protocol: "boot", NextHops: []fib.NextHop{{Link: devs[i]}}}}},
		})
	}
	return steps
}

// comparable lists a model's routes and addresses as sorted text, leaving
// out what the what-if model does not claim: IPv6 link-local and multicast
// routes that addrconf adds when a device comes up.
func comparable(m *fib.Model) (routes, addrs []string) {
	for r := range m.Routes() {
		if r.Family == fib.V6 && (r.Dst.Addr().IsLinkLocalUnicast() || r.Dst.Addr().IsMulticast() || r.Type == fib.TypeMulticast) {
			continue
		}
		text, _ := r.MarshalText()
		routes = append(routes, string(text))
	}
	// Addresses keep their order within a device and family (it decides
	// source selection); the order across devices is only the dump's.
	for a := range m.Addrs() {
		addrs = append(addrs, fmt.Sprintf("%s %s %s scope %s secondary=%t", a.Link, fib.FamilyOf(a.Prefix.Addr()), a.Prefix, a.Scope, a.Secondary))
	}
	slices.SortStableFunc(addrs, func(a, b string) int {
		ka, _, _ := strings.Cut(a, " 1")
		kb, _, _ := strings.Cut(b, " 1")
		return strings.Compare(strings.Join(strings.Fields(ka)[:2], " "), strings.Join(strings.Fields(kb)[:2], " "))
	})
	slices.Sort(routes)
	return routes, addrs
}

// TestWhatIfMatchesKernel applies random plans both to the kernel and, as
// what-if changes, to the model of the same namespace before the plan; the
// routes the kernel creates as side effects must be the ones the model
// predicts, and addresses must come out in the kernel's order.
func TestWhatIfMatchesKernel(t *testing.T) {
	for seed := range uint64(60) {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			ns := nstest.NewWithLoUp(t)
			before := settle(t, ns)
			steps := plan(seed)
			var cmds []string
			var changes []fib.Change
			for _, s := range steps {
				cmds = append(cmds, s.ip...)
				changes = append(changes, s.changes...)
			}
			if err := ns.Batch(cmds); err != nil {
				t.Fatalf("setup: %v", err)
			}
			want := settle(t, ns)
			got := before.Clone()
			if err := got.Apply(changes...); err != nil {
				t.Fatalf("apply: %v", err)
			}
			gotRoutes, gotAddrs := comparable(got)
			wantRoutes, wantAddrs := comparable(want)
			if d := lineDiff(gotRoutes, wantRoutes) + lineDiff(gotAddrs, wantAddrs); d != "" {
				t.Errorf("what-if (-) and kernel (+) differ after:\n  ip %s\n%s", strings.Join(cmds, "\n  ip "), d)
			}
		})
	}
}

// lineDiff lists the lines only in got (-) and only in want (+), or, when
// both hold the same lines, the two orders.
func lineDiff(got, want []string) string {
	if slices.Equal(got, want) {
		return ""
	}
	var b strings.Builder
	for _, l := range got {
		if !slices.Contains(want, l) {
			b.WriteString("  - " + l + "\n")
		}
	}
	for _, l := range want {
		if !slices.Contains(got, l) {
			b.WriteString("  + " + l + "\n")
		}
	}
	if b.Len() == 0 {
		b.WriteString("  order, what-if: " + strings.Join(got, "; ") + "\n  order, kernel:  " + strings.Join(want, "; ") + "\n")
	}
	return b.String()
}
