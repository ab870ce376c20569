package live

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/internal/nstest"
)

// BenchmarkLoad100k measures building a model of a namespace with 100,000
// routes over netlink.
func BenchmarkLoad100k(b *testing.B) {
	ns := nstest.NewWithLoUp(b)
	lines := []string{"link add br0 type bridge", "link set br0 up", "addr add 10.0.0.1/16 dev br0"}
	for i := range 100_000 {
		lines = append(lines, fmt.Sprintf("route add %d.%d.%d.0/24 via 10.0.0.2 table %d", 11+i>>16, i>>8&0xff, i&0xff, 100+i%4))
	}
	cmd := exec.Command("ip", "-n", ns.Name(), "-batch", "-")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("ip -batch: %v: %s", err, out)
	}
	b.ReportAllocs()
	for b.Loop() {
		m, err := Load(ns.Path())
		if err != nil {
			b.Fatal(err)
		}
		if n := routeCount(m); n < 100_000 {
			b.Fatalf("loaded %d routes", n)
		}
		m.Freeze()
	}
}

// BenchmarkLoadFor100k measures LoadFor of one destination in the same
// namespace as BenchmarkLoad100k (tables merged), which it must not
// read whole.
func BenchmarkLoadFor100k(b *testing.B) {
	ns := nstest.NewWithLoUp(b)
	lines := []string{"link add br0 type bridge", "link set br0 up", "addr add 10.0.0.1/16 dev br0"}
	for i := range 100_000 {
		lines = append(lines, fmt.Sprintf("route add %d.%d.%d.0/24 via 10.0.0.2 table main", 11+i>>16, i>>8&0xff, i&0xff))
	}
	cmd := exec.Command("ip", "-n", ns.Name(), "-batch", "-")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("ip -batch: %v: %s", err, out)
	}
	dsts := []netip.Addr{netip.MustParseAddr("10.0.5.5")}
	b.ReportAllocs()
	for b.Loop() {
		m, err := LoadFor(ns.Path(), dsts)
		if err != nil {
			b.Fatal(err)
		}
		if n := routeCount(m); n > 10 {
			b.Fatalf("LoadFor read %d routes", n)
		}
	}
}

// routeCount returns the number of routes of a model.
func routeCount(m *fib.Model) int {
	n := 0
	for range m.Routes() {
		n++
	}
	return n
}
