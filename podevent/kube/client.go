package kube

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/fibguard/fibguard/podevent"
)

// maxAttempts bounds the read-then-write rounds of one Record. A round
// is lost only to another process that recorded the same Event in
// between, and each of those wins once, so this many processes recording
// at the same moment all succeed. Kubelet does not set up two sandboxes
// of a pod at once: in practice the first round succeeds.
const maxAttempts = 5

// record does Record's work once the deadline is set.
func (r *Recorder) record(ctx context.Context, ev podevent.Event) (podevent.Outcome, error) {
	c, err := r.client()
	if err != nil {
		return podevent.Outcome{}, err
	}
	if ev.Pod.UID == "" {
		uid, err := c.podUID(ctx, ev.Pod)
		if err != nil {
			return podevent.Outcome{}, err
		}
		ev.Pod.UID = uid
	}
	name := EventName(ev.Pod, ev.Reason)
	for range maxAttempts {
		cur, err := c.readEvent(ctx, ev.Pod.Namespace, name)
		switch {
		case apierrors.IsNotFound(err):
			err = c.createEvent(ctx, newEvent(name, ev))
			if apierrors.IsAlreadyExists(err) {
				continue // created meanwhile: count on it
			}
			if err != nil {
				return podevent.Outcome{}, err
			}
			return podevent.Outcome{Name: name, Count: 1}, nil
		case err != nil:
			return podevent.Outcome{}, err
		}
		count, err := c.countEvent(ctx, cur, ev)
		if apierrors.IsConflict(err) {
			continue // updated meanwhile: count again
		}
		if err != nil {
			return podevent.Outcome{}, err
		}
		return podevent.Outcome{Name: name, Count: count}, nil
	}
	return podevent.Outcome{}, fmt.Errorf("record event %s/%s: still conflicting after %d attempts", ev.Pod.Namespace, name, maxAttempts)
}

// client is a REST client for the core/v1 API group.
type client struct {
	rest *rest.RESTClient
}

// client builds the REST client from Config or the kubeconfig. It is
// built anew on every Record, which is at most once per plugin process.
func (r *Recorder) client() (*client, error) {
	cfg, err := r.restConfig()
	if err != nil {
		return nil, err
	}
	cfg.Timeout = r.Timeout
	if r.UserAgent != "" {
		cfg.UserAgent = r.UserAgent
	}
	cfg.WarningHandlerWithContext = warningLogger{r.Log}
	cfg.APIPath = "/api"
	cfg.GroupVersion = &corev1.SchemeGroupVersion
	cfg.ContentType = runtime.ContentTypeJSON
	cfg.NegotiatedSerializer = codecs()
	rc, err := rest.RESTClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", r.source(), err)
	}
	return &client{rest: rc}, nil
}

// restConfig is a configuration of the Recorder's own to change: a copy
// of Config, or the kubeconfig loaded anew.
func (r *Recorder) restConfig() (*rest.Config, error) {
	if r.Config != nil {
		return rest.CopyConfig(r.Config), nil
	}
	cfg, err := trustedConfig(r.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", r.Kubeconfig, err)
	}
	return cfg, nil
}

// source names the credentials in errors.
func (r *Recorder) source() string {
	if r.Config != nil {
		return "the client configuration " + r.Config.Host
	}
	return "kubeconfig " + r.Kubeconfig
}

// codecs decode the two kinds fibguard reads, Event and Pod, and the
// API's Status errors. Registering them alone, when a client is built,
// instead of importing client-go's scheme of every API group, keeps the
// cost of package initialisation off every plugin run.
func codecs() runtime.NegotiatedSerializer {
	s := runtime.NewScheme()
	s.AddKnownTypes(corev1.SchemeGroupVersion, &corev1.Event{}, &corev1.Pod{})
	metav1.AddToGroupVersion(s, corev1.SchemeGroupVersion)
	return serializer.NewCodecFactory(s).WithoutConversion()
}

// podUID asks the API server for the UID of a pod.
func (c *client) podUID(ctx context.Context, pod podevent.Pod) (string, error) {
	var p corev1.Pod
	err := c.rest.Get().Namespace(pod.Namespace).Resource("pods").Name(pod.Name).
		MaxRetries(0).Do(ctx).Into(&p)
	if apierrors.IsForbidden(err) {
		// The default RBAC grants no get on pods: the runtimes pass
		// K8S_POD_UID. Say which option a runtime that does not needs.
		return "", fmt.Errorf("get pod %s for its UID, as the runtime passed no K8S_POD_UID: %w "+
			"(grant pods get: the kustomize component manifests/components/pods-get, or the chart's rbac.podsGet)", pod, err)
	}
	if err != nil {
		return "", fmt.Errorf("get pod %s for its UID: %w", pod, err)
	}
	return string(p.UID), nil
}

// readEvent returns the Event of that name. It reads with an empty merge
// patch, which changes nothing and returns the object, because the
// least-privilege role grants patch on events but not get.
func (c *client) readEvent(ctx context.Context, namespace, name string) (*corev1.Event, error) {
	var e corev1.Event
	err := c.rest.Patch(types.MergePatchType).Namespace(namespace).Resource("events").Name(name).
		Body([]byte("{}")).MaxRetries(0).Do(ctx).Into(&e)
	if err != nil {
		return nil, fmt.Errorf("read event %s/%s: %w", namespace, name, err)
	}
	return &e, nil
}

// newEvent is the first occurrence of ev, as kubelet's recorder builds
// its Events.
func newEvent(name string, ev podevent.Event) *corev1.Event {
	t := metav1.NewTime(ev.Time)
	ref := corev1.ObjectReference{
		Kind: "Pod", APIVersion: "v1",
		Namespace: ev.Pod.Namespace, Name: ev.Pod.Name, UID: types.UID(ev.Pod.UID),
	}
	if ev.Kind == podevent.KindNode {
		ref = corev1.ObjectReference{Kind: "Node", APIVersion: "v1", Name: ev.Pod.Name, UID: types.UID(ev.Pod.UID)}
	}
	return &corev1.Event{
		TypeMeta:            metav1.TypeMeta{Kind: "Event", APIVersion: "v1"},
		ObjectMeta:          metav1.ObjectMeta{Name: name, Namespace: ev.Pod.Namespace},
		InvolvedObject:      ref,
		Type:                cmp.Or(ev.Type, corev1.EventTypeWarning),
		Reason:              ev.Reason,
		Message:             ev.Message,
		Action:              ev.Action,
		Source:              corev1.EventSource{Component: podevent.Component, Host: ev.Node},
		ReportingController: podevent.Component,
		ReportingInstance:   ev.Node,
		FirstTimestamp:      t,
		LastTimestamp:       t,
		Count:               1,
	}
}

// createEvent creates an Event.
func (c *client) createEvent(ctx context.Context, e *corev1.Event) error {
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode event %s/%s: %w", e.Namespace, e.Name, err)
	}
	err = c.rest.Post().Namespace(e.Namespace).Resource("events").
		Body(body).MaxRetries(0).Do(ctx).Error()
	if err != nil {
		return fmt.Errorf("create event %s/%s: %w", e.Namespace, e.Name, err)
	}
	return nil
}

// countPatch is one more occurrence of an Event, conditional on the
// resourceVersion of the Event as read: the API server refuses it with
// 409 Conflict if anything wrote the Event since.
type countPatch struct {
	Metadata struct {
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
	Count         int32       `json:"count"`
	LastTimestamp metav1.Time `json:"lastTimestamp"`
	Message       string      `json:"message"`
	Action        string      `json:"action,omitempty"`
}

// countEvent writes the occurrence ev on the Event cur and returns the
// new count.
func (c *client) countEvent(ctx context.Context, cur *corev1.Event, ev podevent.Event) (int32, error) {
	p := countPatch{
		Count:         max(cur.Count, 1) + 1,
		LastTimestamp: metav1.NewTime(ev.Time),
		Message:       ev.Message,
		Action:        ev.Action,
	}
	p.Metadata.ResourceVersion = cur.ResourceVersion
	body, err := json.Marshal(p)
	if err != nil {
		return 0, fmt.Errorf("encode patch of event %s/%s: %w", cur.Namespace, cur.Name, err)
	}
	var updated corev1.Event
	err = c.rest.Patch(types.MergePatchType).Namespace(cur.Namespace).Resource("events").Name(cur.Name).
		Body(body).MaxRetries(0).Do(ctx).Into(&updated)
	if err != nil {
		return 0, fmt.Errorf("update event %s/%s: %w", cur.Namespace, cur.Name, err)
	}
	return updated.Count, nil
}

// warningLogger passes the API server's warnings to a log.
type warningLogger struct{ log *slog.Logger }

func (w warningLogger) HandleWarningHeaderWithContext(ctx context.Context, code int, agent, text string) {
	if w.log != nil {
		w.log.WarnContext(ctx, "API server warning", "code", code, "agent", agent, "warning", text)
	}
}
