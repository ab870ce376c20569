// Package cluster follows the cluster's Node objects for the node agent:
// this node's pod CIDRs and the other nodes' addresses and pod CIDRs, for
// the node-wide checks (agent.ClusterSource).
package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/fibguard/fibguard/agent"
	"github.com/fibguard/fibguard/checker"
)

// Nodes follows the Node objects with an informer (list and watch of
// nodes: the only rights it needs) and serves the view of one node.
type Nodes struct {
	self    string
	lister  listersv1.NodeLister
	log     *slog.Logger
	changed chan struct{}

	mu   sync.Mutex
	view agent.ClusterView
	ok   bool
}

var _ agent.ClusterSource = (*Nodes)(nil)

// Watch starts following the Node objects until ctx is done; self is this
// node's name.
func Watch(ctx context.Context, cfg *rest.Config, self string, log *slog.Logger) (*Nodes, error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("client for the Node objects: %w", err)
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	inf := factory.Core().V1().Nodes()
	n := &Nodes{self: self, lister: inf.Lister(), log: log, changed: make(chan struct{}, 1)}
	update := func(any) { n.recompute() }
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    update,
		UpdateFunc: func(_, obj any) { update(obj) },
		DeleteFunc: update,
	}); err != nil {
		return nil, fmt.Errorf("watching the Node objects: %w", err)
	}
	factory.Start(ctx.Done())
	go func() {
		if cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced) {
			n.recompute()
		}
	}()
	return n, nil
}

// View returns the latest view, once the informer has listed the nodes and
// this node is among them.
func (n *Nodes) View() (agent.ClusterView, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.view, n.ok
}

// Changed receives a value when the view changed.
func (n *Nodes) Changed() <-chan struct{} { return n.changed }

// recompute builds the view from the informer's cache and signals a
// change; a Node update that changes nothing the checks read (a
// heartbeat, a label) is not one.
func (n *Nodes) recompute() {
	nodes, err := n.lister.List(labels.Everything())
	if err != nil {
		n.log.Warn("listing the Node objects from the cache", "err", err)
		return
	}
	view, ok := viewOf(n.self, nodes)
	n.mu.Lock()
	same := ok == n.ok && reflect.DeepEqual(view, n.view)
	n.view, n.ok = view, ok
	n.mu.Unlock()
	if !same {
		select {
		case n.changed <- struct{}{}:
		default:
		}
	}
}

// viewOf is the view of node self among nodes, and false if self is not
// there.
func viewOf(self string, nodes []*corev1.Node) (agent.ClusterView, bool) {
	slices.SortFunc(nodes, func(a, b *corev1.Node) int { return strings.Compare(a.Name, b.Name) })
	var view agent.ClusterView
	found := false
	for _, node := range nodes {
		if node.Name == self {
			view.Node, view.NodeUID, view.PodCIDRs = node.Name, string(node.UID), podCIDRs(node)
			found = true
			continue
		}
		view.Others = append(view.Others, checker.Node{Name: node.Name, Addresses: addresses(node), PodCIDRs: podCIDRs(node)})
	}
	return view, found
}

// podCIDRs are a node's spec.podCIDRs (or the older spec.podCIDR).
func podCIDRs(node *corev1.Node) []netip.Prefix {
	list := node.Spec.PodCIDRs
	if len(list) == 0 && node.Spec.PodCIDR != "" {
		list = []string{node.Spec.PodCIDR}
	}
	var out []netip.Prefix
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// addresses are a node's InternalIP and ExternalIP addresses, by type.
func addresses(node *corev1.Node) map[netip.Addr]string {
	out := map[netip.Addr]string{}
	for _, a := range node.Status.Addresses {
		if a.Type != corev1.NodeInternalIP && a.Type != corev1.NodeExternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil {
			out[ip.Unmap()] = string(a.Type)
		}
	}
	return out
}
