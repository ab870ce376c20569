package fib

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"

	"github.com/gaissmai/bart"
)

var benchSizes = []int{1_000, 100_000, 1_000_000}

// benchModel is a node with eth0 and n random routes in main.
func benchModel(f Family, n int) (*Model, []netip.Addr) {
	r := rand.New(rand.NewPCG(42, uint64(n)))
	m := NewModel()
	m.st.Links = append(m.st.Links, Link{Index: 2, Name: "eth0", Kind: KindOther, Up: true, Carrier: true})
	m.st.Addrs = []Address{{Prefix: netip.MustParsePrefix("10.255.0.10/16"), Link: "eth0"}, {Prefix: netip.MustParsePrefix("2001:db8::10/64"), Link: "eth0"}}
	m.st.Routes = randomRoutes(r, f, n)
	dsts := make([]netip.Addr, 4096)
	for i := range dsts {
		if i%2 == 0 {
			dsts[i] = m.st.Routes[r.IntN(n)].Dst.Addr()
		} else {
			dsts[i] = randomAddr(r, f)
		}
	}
	return m, dsts
}

// BenchmarkLookup measures Model.Lookup (rules, tables, device and source
// decisions, trace) against BenchmarkPlainLPM over the same prefixes.
func BenchmarkLookup(b *testing.B) {
	for _, trace := range []bool{false, true} {
		for _, f := range []Family{V4, V6} {
			for _, n := range benchSizes {
				b.Run(fmt.Sprintf("trace=%t/%s/routes=%d", trace, f, n), func(b *testing.B) {
					m, dsts := benchModel(f, n)
					m.Freeze()
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						if _, err := m.Lookup(Query{Dst: dsts[i&4095], NoTrace: !trace}); err != nil {
							b.Fatal(err)
						}
						i++
					}
				})
			}
		}
	}
}

// BenchmarkPlainLPM is the baseline: a bare longest-prefix match on a bart
// table holding the same prefixes, with no rules, types or trace.
func BenchmarkPlainLPM(b *testing.B) {
	for _, f := range []Family{V4, V6} {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/routes=%d", f, n), func(b *testing.B) {
				m, dsts := benchModel(f, n)
				var t bart.Table[int]
				for i, r := range m.st.Routes {
					t.Insert(r.Dst, i)
				}
				i := 0
				for b.Loop() {
					t.Lookup(dsts[i&4095])
					i++
				}
			})
		}
	}
}

// BenchmarkDecodeSnapshot measures building a model of 1M IPv4 routes
// from a snapshot file, including the lookup structure.
func BenchmarkDecodeSnapshot(b *testing.B) { benchDecodeSnapshot(b, V4) }

// BenchmarkDecodeSnapshot6 is BenchmarkDecodeSnapshot for 1M IPv6 routes
// (the IPv6 direct table included).
func BenchmarkDecodeSnapshot6(b *testing.B) { benchDecodeSnapshot(b, V6) }

func benchDecodeSnapshot(b *testing.B, f Family) {
	m, _ := benchModel(f, 1_000_000)
	var buf bytes.Buffer
	if err := m.Encode(&buf); err != nil {
		b.Fatal(err)
	}
	m = nil
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	var live uint64
	for b.Loop() {
		got, err := Decode(bytes.NewReader(buf.Bytes()))
		if err != nil {
			b.Fatal(err)
		}
		got.Freeze()
		b.StopTimer()
		live = liveHeap() - uint64(buf.Cap())
		runtime.KeepAlive(got)
		b.StartTimer()
	}
	b.ReportMetric(float64(live)/(1<<20), "MB-live")
}

// liveHeap returns the bytes of heap in use after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
