package checker

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// TestCheckNode: each node-wide check, and what must not raise it.
func TestCheckNode(t *testing.T) {
	pn := func(p, src string) []PodNetwork { return []PodNetwork{{netip.MustParsePrefix(p), src}} }
	worker2 := Node{
		Name:      "worker-2",
		Addresses: map[netip.Addr]string{netip.MustParseAddr("10.250.0.12"): "InternalIP", netip.MustParseAddr("2001:db8::12"): "ExternalIP"},
		PodCIDRs:  []netip.Prefix{netip.MustParsePrefix("10.244.2.0/24"), netip.MustParsePrefix("fd00:244:2::/64")},
	}
	tests := []struct {
		name  string
		in    NodeInput
		codes []Code
		msg   string // in the first finding's message
	}{
		{"healthy", NodeInput{PodNetworks: pn("10.244.1.0/24", "spec.podCIDRs"), Others: []Node{worker2},
			ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")}}, nil, ""},
		{"loopback", NodeInput{PodNetworks: pn("127.16.0.0/16", "IPAM range of 10-pods.conflist")}, []Code{CodeLoopbackNetwork},
			"pod network 127.16.0.0/16 (IPAM range of 10-pods.conflist) is in the loopback range 127.0.0.0/8"},
		{"a range around the loopback range", NodeInput{PodNetworks: pn("96.0.0.0/3", "spec.podCIDRs")}, []Code{CodeLoopbackNetwork}, "overlaps the loopback range 127.0.0.0/8: the node delivers the pod IPs in 127.0.0.0/8 to lo"},
		{"IPv6 loopback", NodeInput{PodNetworks: pn("::/127", "spec.podCIDRs")}, []Code{CodeLoopbackNetwork}, "::1/128"},
		{"another node's address", NodeInput{PodNetworks: pn("10.250.0.0/16", "spec.podCIDRs"), Others: []Node{worker2}},
			[]Code{CodeHoldsNodeAddress}, "contains 10.250.0.12, the InternalIP of node worker-2"},
		{"another node's IPv6 address", NodeInput{PodNetworks: pn("2001:db8::/64", "spec.podCIDRs"), Others: []Node{worker2}},
			[]Code{CodeHoldsNodeAddress}, "the ExternalIP of node worker-2"},
		{"another node's pod CIDR", NodeInput{PodNetworks: pn("10.244.2.128/25", "spec.podCIDRs"), Others: []Node{worker2}},
			[]Code{CodeOverlapsNodeCIDR}, "overlaps 10.244.2.0/24, the pod CIDR of node worker-2"},
		{"host bits are masked", NodeInput{PodNetworks: pn("10.244.2.7/24", "spec.podCIDRs"), Others: []Node{worker2}},
			[]Code{CodeOverlapsNodeCIDR}, "pod network 10.244.2.0/24"},
		{"a service CIDR", NodeInput{PodNetworks: pn("10.96.0.0/16", "spec.podCIDRs"), ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")}},
			[]Code{CodeNetworkOverlapsService}, "overlaps service CIDR 10.96.0.0/12"},
		{"no other node, no ranges", NodeInput{}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := CheckNode(tt.in, Options{})
			var codes []Code
			for _, f := range fs {
				codes = append(codes, f.Code)
				if f.Severity != SeverityError || f.Fix == "" {
					t.Errorf("%s: severity %s, fix %q", f.Code, f.Severity, f.Fix)
				}
			}
			if !slices.Equal(codes, tt.codes) {
				t.Fatalf("codes %v, want %v: %+v", codes, tt.codes, fs)
			}
			if len(fs) > 0 && !strings.Contains(fs[0].Message, tt.msg) {
				t.Errorf("message %q lacks %q", fs[0].Message, tt.msg)
			}
		})
	}
	off := CheckNode(NodeInput{PodNetworks: pn("127.16.0.0/16", "x")}, Options{Disabled: map[Code]bool{CodeLoopbackNetwork: true}})
	if len(off) != 0 {
		t.Errorf("a disabled check reported %v", off)
	}
}
