package fib

import (
	"net/netip"
	"testing"
)

func TestLabel6(t *testing.T) {
	tests := []struct {
		addr string
		want int
	}{
		{"::1", 0}, {"2001:db8::1", 1}, {"2002::1", 2}, {"::2", 3}, {"::ffff:10.0.0.1", 4},
		{"fd00::1", 5}, {"fc00::1", 5}, {"2001::1", 6}, {"2001:10::1", 7}, {"2001:1f::1", 7},
		{"2001:20::1", 1}, {"fec0::1", 11}, {"3ffe::1", 12}, {"fe80::1", 1}, {"ff02::1", 1},
	}
	for _, tt := range tests {
		if got := label6(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("label6(%s) = %d, want %d", tt.addr, got, tt.want)
		}
	}
}
