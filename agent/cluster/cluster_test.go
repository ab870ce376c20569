package cluster

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestViewOf builds the view of one node: its pod CIDRs (spec.podCIDRs, or
// the older spec.podCIDR), and the others with their InternalIP and
// ExternalIP addresses only; without the node itself there is no view.
func TestViewOf(t *testing.T) {
	node := func(name, uid string, spec corev1.NodeSpec, addrs ...corev1.NodeAddress) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + uid)}, Spec: spec,
			Status: corev1.NodeStatus{Addresses: addrs}}
	}
	nodes := []*corev1.Node{
		node("b", "2", corev1.NodeSpec{PodCIDR: "10.244.2.0/24"},
			corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.2"},
			corev1.NodeAddress{Type: corev1.NodeHostName, Address: "b"},
			corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "2001:db8::2"}),
		node("a", "1", corev1.NodeSpec{PodCIDRs: []string{"10.244.1.7/24", "fd00:1::/64"}}),
	}
	v, ok := viewOf("a", nodes)
	if !ok || v.Node != "a" || v.NodeUID != "uid-1" || len(v.PodCIDRs) != 2 || v.PodCIDRs[0] != netip.MustParsePrefix("10.244.1.0/24") {
		t.Fatalf("view %+v, %v", v, ok)
	}
	if len(v.Others) != 1 || v.Others[0].Name != "b" || len(v.Others[0].Addresses) != 2 ||
		v.Others[0].Addresses[netip.MustParseAddr("2001:db8::2")] != "ExternalIP" || v.Others[0].PodCIDRs[0] != netip.MustParsePrefix("10.244.2.0/24") {
		t.Errorf("others %+v", v.Others)
	}
	if _, ok := viewOf("c", nodes); ok {
		t.Error("a view of a node that is not there")
	}
}
