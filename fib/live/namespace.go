package live

import (
	"errors"
	"fmt"
)

// errClosed reports a request on a closed Namespace.
var errClosed = errors.New("namespace is closed")

// Namespace is a network namespace opened for several requests: a caller
// that builds a model with LoadFor and then asks the kernel about the same
// destinations with RouteGet, as the CNI plugin does on every ADD, sets up
// the netlink sockets once. A Namespace is not safe for concurrent use.
type Namespace struct {
	t *target
}

// Open opens a network namespace: "" is the namespace of the process,
// anything with a slash a path, anything else a name under /var/run/netns.
// Close releases it.
func Open(netns string) (*Namespace, error) {
	t, err := open(netns, nil)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	return &Namespace{t: t}, nil
}

// Close closes the namespace's netlink sockets. Closing twice does
// nothing.
func (n *Namespace) Close() {
	if n.t != nil {
		n.t.close()
		n.t = nil
	}
}
