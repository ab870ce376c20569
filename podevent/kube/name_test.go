package kube

import (
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/fibguard/fibguard/podevent"
)

// validName reports whether the API server takes s as an Event's name: a
// DNS subdomain of at most 253 bytes.
func validName(s string) bool { return len(validation.IsDNS1123Subdomain(s)) == 0 }

func TestEventName(t *testing.T) {
	pod := podevent.Pod{Namespace: "default", Name: "web-0", UID: "8a1c6f0e-3b0d-4d5e-9a61-2f0c4b7d9e11"}
	name := EventName(pod, podevent.ReasonRejected)
	if !regexp.MustCompile(`^web-0\.fibguard\.[0-9a-f]{16}$`).MatchString(name) {
		t.Errorf("EventName = %q, want web-0.fibguard.<16 hex digits>", name)
	}
	if again := EventName(pod, podevent.ReasonRejected); again != name {
		t.Errorf("EventName is not deterministic: %q then %q", name, again)
	}
	// The digits of the names given before EventName moved here from
	// package podevent: an Event recorded by an older plugin is found
	// and updated by a newer one.
	if want := "web-0.fibguard.1466f42a7516d484"; name != want {
		t.Errorf("EventName = %q, want %q as before", name, want)
	}
	other := map[string]string{
		"warning":            EventName(pod, podevent.ReasonWarning),
		"new pod, same name": EventName(podevent.Pod{Namespace: pod.Namespace, Name: pod.Name, UID: "0e9a7c3d-1111-4d5e-9a61-2f0c4b7d9e11"}, podevent.ReasonRejected),
	}
	for what, n := range other {
		if n == name {
			t.Errorf("%s: same name %q as the rejection of the first pod", what, n)
		}
	}

	// Long pod names are cut so that the name stays valid.
	for _, podName := range []string{
		strings.Repeat("a", 253),
		strings.Repeat("a", 226) + "-" + strings.Repeat("b", 26), // the cut falls right after '-'
		strings.Repeat("abcdefg.", 31) + "abcde",                 // 253 bytes of labels
	} {
		n := EventName(podevent.Pod{Namespace: "default", Name: podName, UID: "u"}, podevent.ReasonRejected)
		if !validName(n) {
			t.Errorf("EventName for a %d-byte pod name = %q (%d bytes): not a valid object name", len(podName), n, len(n))
		}
	}
}

// FuzzEventName: the name of an Event about any pod that CNI_ARGS can
// give (podevent.PodFromCNIArgs) is a name the API server accepts.
func FuzzEventName(f *testing.F) {
	f.Add("K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_UID=8a1c6f0e-3b0d-4d5e-9a61-2f0c4b7d9e11")
	f.Add("K8S_POD_NAMESPACE=a;K8S_POD_NAME=" + strings.Repeat("b", 253) + ";K8S_POD_UID=u")
	f.Add("K8S_POD_NAMESPACE=a;K8S_POD_NAME=" + strings.Repeat("b.", 126) + "c;K8S_POD_UID=u")
	f.Fuzz(func(t *testing.T, args string) {
		pod, err := podevent.PodFromCNIArgs(args)
		if err != nil {
			return
		}
		for _, reason := range []string{podevent.ReasonRejected, podevent.ReasonWarning} {
			if n := EventName(pod, reason); !validName(n) {
				t.Fatalf("EventName(%+v) = %q: not a valid object name", pod, n)
			}
		}
	})
}
