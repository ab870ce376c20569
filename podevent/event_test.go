package podevent

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestPodFromCNIArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		args string
		want Pod
		// err: "" for success, "no pod" for ErrNoPod, else a substring
		err string
	}{
		{"containerd", "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=4f1f5c7e;K8S_POD_UID=8a1c6f0e-3b0d-4d5e-9a61-2f0c4b7d9e11",
			Pod{"default", "web-0", "8a1c6f0e-3b0d-4d5e-9a61-2f0c4b7d9e11"}, ""},
		{"no UID", "K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns-5d78c9869d-x2x7q",
			Pod{"kube-system", "coredns-5d78c9869d-x2x7q", ""}, ""},
		{"order and empty pairs do not matter", ";K8S_POD_UID=u1;;K8S_POD_NAME=a.b;K8S_POD_NAMESPACE=ns;",
			Pod{"ns", "a.b", "u1"}, ""},
		{"empty", "", Pod{}, "no pod"},
		{"not Kubernetes", "IgnoreUnknown=1;FOO=bar", Pod{}, "no pod"},
		{"name without namespace", "K8S_POD_NAME=web-0", Pod{}, "K8S_POD_NAMESPACE \"\" is not a namespace name"},
		{"namespace without name", "K8S_POD_NAMESPACE=default", Pod{}, "K8S_POD_NAME \"\" is not a pod name"},
		{"malformed pair", "K8S_POD_NAMESPACE=default;K8S_POD_NAME", Pod{}, `"K8S_POD_NAME" is not KEY=VALUE`},
		{"namespace twice: another pod's namespace smuggled in", "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_NAMESPACE=kube-system",
			Pod{}, "K8S_POD_NAMESPACE is given more than once"},
		{"name twice, same value", "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_NAME=web", Pod{}, "K8S_POD_NAME is given more than once"},
		{"UID twice", "K8S_POD_UID=u1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_UID=u2", Pod{}, "K8S_POD_UID is given more than once"},
		{"any key twice", "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;IgnoreUnknown=1", Pod{}, "IgnoreUnknown is given more than once"},
		{"uppercase name", "K8S_POD_NAMESPACE=default;K8S_POD_NAME=Web", Pod{}, "is not a pod name"},
		{"namespace too long", "K8S_POD_NAMESPACE=" + strings.Repeat("n", 64) + ";K8S_POD_NAME=web", Pod{}, "is not a namespace name"},
		{"UID with a space", "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_UID=a b", Pod{}, "is not a UID"},
		{"every problem at once", "K8S_POD_NAMESPACE=A;K8S_POD_NAME=B;K8S_POD_UID=-", Pod{},
			`K8S_POD_NAMESPACE "A" is not a namespace name; K8S_POD_NAME "B" is not a pod name; K8S_POD_UID "-" is not a UID`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PodFromCNIArgs(tc.args)
			switch tc.err {
			case "":
				if err != nil || got != tc.want {
					t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
				}
			case "no pod":
				if !errors.Is(err, ErrNoPod) {
					t.Errorf("got %+v, %v; want ErrNoPod", got, err)
				}
			default:
				if err == nil || !strings.Contains(err.Error(), tc.err) || errors.Is(err, ErrNoPod) {
					t.Errorf("got %+v, %v; want an error containing %q", got, err, tc.err)
				}
			}
		})
	}
}

func TestMessage(t *testing.T) {
	long := func(code string, n int) string { return code + " " + strings.Repeat("x", n) }
	for _, tc := range []struct {
		name  string
		items []string
		want  string
	}{
		{"none", nil, ""},
		{"one", []string{"FG001 pod IP 127.16.0.2 is unreachable from the host"},
			"FG001 pod IP 127.16.0.2 is unreachable from the host"},
		{"joined", []string{"FG001 a", "FG020 b"}, "FG001 a; FG020 b"},
		{"one line", []string{"FG001 first\nsecond\t third  ", "  ", "FG020 b"}, "FG001 first second third; FG020 b"},
		{"exactly the limit", []string{long("FG001", MaxMessageLen-6)}, long("FG001", MaxMessageLen-6)},
		{"whole items and a count of the rest",
			[]string{long("FG001", 500), long("FG002", 400), long("FG003", 200), "FG004 d"},
			long("FG001", 500) + "; " + long("FG002", 400) + " (+2 more)"},
		{"the last item fits without a count", []string{long("FG001", 500), long("FG002", MaxMessageLen-500-14)},
			long("FG001", 500) + "; " + long("FG002", MaxMessageLen-500-14)},
		{"first item cut", []string{long("FG001", 2000), "FG002 b"},
			long("FG001", MaxMessageLen-6-len("… (+1 more)")) + "… (+1 more)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Message(tc.items)
			if got != tc.want {
				t.Errorf("Message:\ngot  %q (%d bytes)\nwant %q (%d bytes)", got, len(got), tc.want, len(tc.want))
			}
			if len(got) > MaxMessageLen {
				t.Errorf("%d bytes, more than %d", len(got), MaxMessageLen)
			}
		})
	}

	// A cut never splits a character, whatever its width.
	for _, r := range []string{"é", "€", "𝄞"} {
		for pad := range 4 {
			got := Message([]string{strings.Repeat("x", pad) + strings.Repeat(r, MaxMessageLen)})
			if !utf8.ValidString(got) || len(got) > MaxMessageLen || !strings.HasSuffix(got, "…") {
				t.Errorf("%q ×%d after %d bytes: %d bytes, valid UTF-8 %v, ends %q",
					r, MaxMessageLen, pad, len(got), utf8.ValidString(got), got[max(0, len(got)-8):])
			}
		}
	}
}

func TestEventValidate(t *testing.T) {
	ok := Event{Pod: Pod{"default", "web-0", "u"}, Reason: ReasonRejected, Message: "FG001 x", Action: "ADD", Node: "node-1"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid event: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(*Event)
		want   string
	}{
		{"no reason", func(e *Event) { e.Reason = "" }, "reason"},
		{"reason too long", func(e *Event) { e.Reason = strings.Repeat("R", 129) }, "reason"},
		{"no node", func(e *Event) { e.Node = "" }, "node"},
		{"node with capitals", func(e *Event) { e.Node = "Node-1" }, "node"},
		{"bad pod", func(e *Event) { e.Pod.Name = "" }, "pod name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := ok
			tc.change(&ev)
			if err := ev.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error about %s", err, tc.want)
			}
		})
	}
}

func ExampleMessage() {
	fmt.Println(Message([]string{
		"FG001 pod IP 127.16.0.2 is unreachable from the host: the kernel refuses it",
		"FG020 pod IP 127.16.0.2 is a loopback address",
	}))
	// Output: FG001 pod IP 127.16.0.2 is unreachable from the host: the kernel refuses it; FG020 pod IP 127.16.0.2 is a loopback address
}

// TestNamesAsKubernetes compares the hand-written name checks with the
// API server's own validation, on edge cases and seeded random strings.
func TestNamesAsKubernetes(t *testing.T) {
	inputs := []string{"", "a", "-", "a-", "-a", "a-b", "a.b", "a..b", ".a", "a.", "A", "a_b", "1", "1-2.3-4",
		strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a", 253), strings.Repeat("a", 254),
		strings.Repeat("a.", 126) + "a", "é", "a b"}
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ab9-._Z"
	for range 5000 {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		inputs = append(inputs, string(b))
	}
	for _, s := range inputs {
		if got, want := isSubdomain(s), len(validation.IsDNS1123Subdomain(s)) == 0; got != want {
			t.Errorf("isSubdomain(%q) = %v, Kubernetes says %v", s, got, want)
		}
		if got, want := isNamespace(s), len(validation.IsDNS1123Label(s)) == 0; got != want {
			t.Errorf("isNamespace(%q) = %v, Kubernetes says %v", s, got, want)
		}
	}
}

// FuzzPodFromCNIArgs: any CNI_ARGS gives a valid pod or an error, never a
// panic; a pod is only what the arguments say, each pod key given once
// (a repeated key of any kind is refused, so no reader can take another
// pod than the Event names). kube's FuzzEventName holds the names of
// Events about such pods to Kubernetes' rules.
func FuzzPodFromCNIArgs(f *testing.F) {
	for _, seed := range []string{
		"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_UID=8a1c6f0e-3b0d-4d5e-9a61-2f0c4b7d9e11",
		"K8S_POD_NAMESPACE=a;K8S_POD_NAME=" + strings.Repeat("b", 253),
		"K8S_POD_NAMESPACE=;K8S_POD_NAME==",
		";;=;",
	} {
		f.Add(seed)
	}
	f.Add("K8S_POD_NAMESPACE=a;K8S_POD_NAME=b;K8S_POD_NAME=c")
	f.Add("K8S_POD_NAMESPACE=a;K8S_POD_NAME=b;;IgnoreUnknown=1;IgnoreUnknown=1")
	f.Fuzz(func(t *testing.T, args string) {
		pod, err := PodFromCNIArgs(args)
		if err != nil {
			return
		}
		given := map[string]int{}
		for pair := range strings.SplitSeq(args, ";") {
			if k, _, ok := strings.Cut(pair, "="); ok {
				given[k]++
			}
		}
		for k, n := range given {
			if n > 1 {
				t.Fatalf("PodFromCNIArgs(%q) = %+v: accepted %s given %d times", args, pod, k, n)
			}
		}
		for k, v := range map[string]string{argNamespace: pod.Namespace, argName: pod.Name, argUID: pod.UID} {
			if v != "" && !slices.Contains(strings.Split(args, ";"), k+"="+v) {
				t.Fatalf("PodFromCNIArgs(%q) = %+v: %s %q is not in the arguments", args, pod, k, v)
			}
		}
		if err := pod.validate(); err != nil {
			t.Fatalf("PodFromCNIArgs(%q) = %+v, invalid: %v", args, pod, err)
		}
	})
}
