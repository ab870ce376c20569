package podevent

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Reasons of fibguard's Events: stable, CamelCase as Kubernetes reasons
// are, so that alerts and `kubectl get events --field-selector reason=...`
// can rely on them.
const (
	// ReasonRejected: fibguard refused the pod's network (enforce mode).
	ReasonRejected = "PodNetworkRejected"
	// ReasonWarning: fibguard would have refused it; mode warn let it pass.
	ReasonWarning = "PodNetworkWarning"
	// ReasonBroken: a pod's network that passed broke later, when the
	// node changed (the node agent).
	ReasonBroken = "PodNetworkBroken"
	// ReasonRestored: a broken pod network passes again (the node agent).
	ReasonRestored = "PodNetworkRestored"
)

// KindNode is Event.Kind for an Event about a Node: its Pod names the
// Node (Name, UID) and the namespace its Events go to, NodeEventNamespace.
const KindNode = "Node"

// NodeEventNamespace is where Events about Nodes go, as kubelet's do.
const NodeEventNamespace = "default"

// Types of Events, as Kubernetes spells them.
const (
	TypeWarning = "Warning"
	TypeNormal  = "Normal"
)

// Component is the source component and reporting controller of the
// Events: what the "From" column of `kubectl describe pod` shows.
const Component = "fibguard"

// MaxMessageLen is the longest message Message returns, in bytes: the
// API server's limit for an Event's note (message) in events.k8s.io/v1,
// which core/v1 does not enforce but readers of both APIs assume.
const MaxMessageLen = 1024

// maxReasonLen is the API server's limit for a reason.
const maxReasonLen = 128

// Pod identifies the pod an Event is about, as the runtime names it in
// CNI_ARGS.
type Pod struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// UID is empty when the runtime does not pass K8S_POD_UID; the
	// recorder then asks the API server for it.
	UID string `json:"uid,omitempty"`
}

func (p Pod) String() string { return p.Namespace + "/" + p.Name }

// ErrNoPod is returned by PodFromCNIArgs when CNI_ARGS names no pod: the
// runtime is not a Kubernetes one (or the command is not about a pod).
var ErrNoPod = errors.New("CNI_ARGS names no pod (no K8S_POD_NAMESPACE and K8S_POD_NAME)")

// CNI_ARGS keys that the Kubernetes runtimes (containerd, CRI-O) pass.
const (
	argNamespace = "K8S_POD_NAMESPACE"
	argName      = "K8S_POD_NAME"
	argUID       = "K8S_POD_UID"
)

// PodFromCNIArgs reads the pod from CNI_ARGS, "KEY=VALUE" pairs separated
// by semicolons such as
// "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_UID=…".
// It returns ErrNoPod when neither K8S_POD_NAMESPACE nor K8S_POD_NAME is
// there, and an error naming the problem when CNI_ARGS is malformed (a pair
// without '=', a key given twice) or names an invalid pod.
func PodFromCNIArgs(cniArgs string) (Pod, error) {
	var p Pod
	seen := map[string]bool{}
	for pair := range strings.SplitSeq(cniArgs, ";") {
		if pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			return Pod{}, fmt.Errorf("CNI_ARGS: %q is not KEY=VALUE", pair)
		}
		// A repeated key is refused, not resolved: which value counts is
		// up to each reader, and a crafted list could otherwise name one
		// pod to the runtime and another to the Event.
		if seen[k] {
			return Pod{}, fmt.Errorf("CNI_ARGS: %s is given more than once; refusing to guess which pod is meant", k)
		}
		seen[k] = true
		switch k {
		case argNamespace:
			p.Namespace = v
		case argName:
			p.Name = v
		case argUID:
			p.UID = v
		}
	}
	if p.Namespace == "" && p.Name == "" {
		return Pod{}, ErrNoPod
	}
	if err := p.validate(); err != nil {
		return Pod{}, fmt.Errorf("CNI_ARGS: %w", err)
	}
	return p, nil
}

// isLabel reports whether s is an RFC 1123 label without its length
// limit: lowercase letters, digits and '-', starting and ending with a
// letter or digit. (Hand-written rather than a regexp: compiling one at
// package initialisation would cost every plugin run, which mostly
// records no Event.)
func isLabel(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '-' && i > 0 && i < len(s)-1:
		default:
			return false
		}
	}
	return true
}

// isNamespace reports whether s is a valid namespace name.
func isNamespace(s string) bool { return len(s) <= 63 && isLabel(s) }

// isSubdomain reports whether s is an RFC 1123 subdomain, as pod and node
// names are: labels joined by '.', at most 253 bytes.
func isSubdomain(s string) bool {
	if len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if !isLabel(label) {
			return false
		}
	}
	return true
}

// isUID reports whether s can be a UID: the API server assigns UUIDs;
// this accepts them and nothing that could break a header, a log line or
// a field selector — up to 128 letters, digits, '-', '_' and '.',
// starting with a letter or digit.
func isUID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case (c == '-' || c == '_' || c == '.') && i > 0:
		default:
			return false
		}
	}
	return true
}

// validate checks the names as the API server would, so that a bad
// CNI_ARGS is reported as such instead of as a failed request.
func (p Pod) validate() error {
	var problems []string
	if !isNamespace(p.Namespace) {
		problems = append(problems, fmt.Sprintf("%s %q is not a namespace name", argNamespace, p.Namespace))
	}
	if !isSubdomain(p.Name) {
		problems = append(problems, fmt.Sprintf("%s %q is not a pod name", argName, p.Name))
	}
	if p.UID != "" && !isUID(p.UID) {
		problems = append(problems, fmt.Sprintf("%s %q is not a UID", argUID, p.UID))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// Event is one occurrence to record: kubelet's retries of the same pod
// give the same Pod and Reason, and so update the same Event.
type Event struct {
	Pod Pod `json:"pod"`
	// Reason is one of the Reason constants (any CamelCase word of at
	// most 128 bytes is accepted).
	Reason string `json:"reason"`
	// Type is TypeWarning or TypeNormal; empty means TypeWarning.
	Type string `json:"type,omitempty"`
	// Kind is what the Event is about: "" for the pod Pod names, KindNode
	// for a Node (see KindNode).
	Kind string `json:"kind,omitempty"`
	// Message is the one-line summary, from Message.
	Message string `json:"message"`
	// Action is the CNI command that judged the pod: "ADD" or "CHECK".
	Action string `json:"action"`
	// Node is the node's name: the reporting instance and source host.
	Node string `json:"node"`
	// Time is when it happened; the zero value means now.
	Time time.Time `json:"time"`
}

// Outcome says what recording an Event did.
type Outcome struct {
	// Name is the Event object's name, in the pod's namespace.
	Name string `json:"name"`
	// Count is the Event's count after this occurrence: 1 when it was
	// created.
	Count int32 `json:"count"`
}

// Validate checks what a recorder needs before it builds a client: the
// names as the API server would check them, so that a bad CNI_ARGS is
// reported as such instead of as a failed request.
func (ev Event) Validate() error {
	var problems []string
	if err := ev.Pod.validate(); err != nil {
		problems = append(problems, err.Error())
	}
	if ev.Reason == "" || len(ev.Reason) > maxReasonLen {
		problems = append(problems, fmt.Sprintf("reason %q: want 1 to %d bytes", ev.Reason, maxReasonLen))
	}
	if ev.Kind != "" && (ev.Kind != KindNode || ev.Pod.Namespace != NodeEventNamespace || ev.Pod.UID == "") {
		problems = append(problems, fmt.Sprintf("kind %q: want %q, with the node's UID and namespace %q", ev.Kind, KindNode, NodeEventNamespace))
	}
	if ev.Type != "" && ev.Type != TypeWarning && ev.Type != TypeNormal {
		problems = append(problems, fmt.Sprintf("type %q: want %q or %q", ev.Type, TypeWarning, TypeNormal))
	}
	if !isSubdomain(ev.Node) {
		problems = append(problems, fmt.Sprintf("node %q is not a node name", ev.Node))
	}
	if len(problems) > 0 {
		return fmt.Errorf("invalid event: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Message joins the findings' one-line summaries ("FG001 pod IP … is
// unreachable …") with "; " into a single line of at most MaxMessageLen
// bytes. Line breaks and runs of spaces inside an item become one space,
// so that `kubectl describe`'s table stays intact. When the items do not
// all fit, as many whole items as fit are kept and " (+N more)" says how
// many were left out; an item that does not fit even alone is cut at a
// character boundary and marked with "…".
func Message(items []string) string {
	clean := make([]string, 0, len(items))
	for _, it := range items {
		if it = strings.Join(strings.FieldsFunc(it, unicode.IsSpace), " "); it != "" {
			clean = append(clean, it)
		}
	}
	if len(clean) == 0 {
		return ""
	}
	// msg holds the first k items; each one added must leave room for
	// the count of those that follow.
	msg, k := clean[0], 1
	for ; k < len(clean); k++ {
		next := msg + "; " + clean[k]
		if len(next)+len(more(len(clean)-k-1)) > MaxMessageLen {
			break
		}
		msg = next
	}
	return fitFirst(msg, more(len(clean)-k))
}

// more is the note on n items left out of a message.
func more(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (+%d more)", n)
}

// fitFirst returns msg followed by suffix, cutting msg (and marking the
// cut with "…") if both do not fit in MaxMessageLen bytes.
func fitFirst(msg, suffix string) string {
	if len(msg)+len(suffix) <= MaxMessageLen {
		return msg + suffix
	}
	const ellipsis = "…"
	n := MaxMessageLen - len(suffix) - len(ellipsis)
	for n > 0 && !utf8.RuneStart(msg[n]) {
		n--
	}
	return msg[:n] + ellipsis + suffix
}
