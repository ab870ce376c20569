package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/fibguard/fibguard/podevent"
)

// EventName is the name of the Event object for a pod and reason:
// "<pod>.fibguard.<16 hex digits>", the digits from a hash of the pod's
// UID and the reason. It is the same on every retry of the same pod, so
// that a repeat finds the Event to update without listing, and differs
// for a new pod of the same name (a StatefulSet's replacement). The pod
// name is shortened if needed to keep the name within the API server's
// 253 bytes. The pod's UID must be known.
//
// It lives here, with the recorder, and not in package podevent: the
// plugin imports podevent on every ADD, and the hash would add the
// crypto packages' initialisation to every plugin start.
func EventName(pod podevent.Pod, reason string) string {
	sum := sha256.Sum256([]byte(pod.UID + "/" + reason))
	suffix := "." + podevent.Component + "." + hex.EncodeToString(sum[:8])
	base := pod.Name
	if n := 253 - len(suffix); len(base) > n {
		// A pod name is a DNS subdomain: cut, it stays one once its
		// trailing '-' and '.' are gone.
		base = strings.TrimRight(base[:n], "-.")
	}
	return base + suffix
}
