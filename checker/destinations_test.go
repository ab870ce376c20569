package checker

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"
)

func TestHostDestinations(t *testing.T) {
	ipc := func(ip net.IP, mask net.IPMask) *current.IPConfig {
		return &current.IPConfig{Address: net.IPNet{IP: ip, Mask: mask}}
	}
	addrs := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	tests := []struct {
		name string
		res  *current.Result
		want []netip.Addr
	}{
		{name: "no result"},
		{
			name: "IPv4 and IPv6",
			res: &current.Result{IPs: []*current.IPConfig{
				ipc(net.ParseIP("10.88.0.2"), net.CIDRMask(24, 32)),
				ipc(net.ParseIP("fd00:88::2"), net.CIDRMask(64, 128)),
			}},
			want: addrs("10.88.0.2", "fd00:88::2"),
		},
		{
			// The checker reads an IPv4 address with a 16-byte mask as
			// IPv4-mapped; either form is looked up.
			name: "IPv4 with a 16-byte mask",
			res:  &current.Result{IPs: []*current.IPConfig{ipc(net.ParseIP("10.88.0.2"), net.CIDRMask(120, 128))}},
			want: addrs("10.88.0.2", "::ffff:10.88.0.2"),
		},
		{
			name: "nil and empty entries",
			res:  &current.Result{IPs: []*current.IPConfig{nil, ipc(nil, nil), ipc(net.IPv4(127, 16, 0, 2).To4(), net.CIDRMask(16, 32))}},
			want: addrs("127.16.0.2"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HostDestinations(tt.res); !slices.Equal(got, tt.want) {
				t.Errorf("HostDestinations = %v, want %v", got, tt.want)
			}
		})
	}
}
