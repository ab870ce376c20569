package install

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fibguard/fibguard/podevent"
)

// Successor tells, when the installer's pod stops, whether another
// installer pod will take over on this node, so that fibguard can stay
// installed meanwhile. A DaemonSet replaces its pod on an update (a new
// image, another mode) by deleting the old one first: an installer that
// uninstalled then would leave the node unguarded until the new pod runs,
// and an ADD already under way could find the conflist naming a binary
// that was just removed. So the installer uninstalls only when its
// DaemonSet is gone or going (kubectl delete, helm uninstall) or its own
// identity was revoked with it.
//
// It asks the API server with the pod's service account: its pod (for the
// owning DaemonSet) and that DaemonSet, both in the pod's namespace. A
// DaemonSet whose template is newer than the pod's is being rolled out:
// that answer is final. Otherwise (a pod deleted by hand, or the start of
// a removal: `kubectl delete namespace` deletes the pods before the
// DaemonSet and the account) the DaemonSet must still be there, and the
// account still accepted, Settle later.
type Successor struct {
	// Server is the API server's URL (see ServerFromEnv).
	Server string
	// ServiceAccountDir holds token, ca.crt and namespace.
	ServiceAccountDir string
	// Pod is the installer pod's name.
	Pod string
	// Timeout bounds the whole question; 0 means 5 seconds.
	Timeout time.Duration
	// Settle is how long a DaemonSet that is not being updated must
	// remain; 0 means 2 seconds.
	Settle time.Duration
}

// templateGenerationLabel is the label the DaemonSet controller puts on its
// pods: the generation of the DaemonSet whose template made the pod.
const templateGenerationLabel = "pod-template-generation"

// maxAPIResponse bounds what is read of an API answer: a pod or a
// DaemonSet, not a stream.
const maxAPIResponse = 4 << 20

// errGone is an API answer meaning "removed": not found, or our own
// identity refused.
var errGone = errors.New("gone")

// objectMeta is what Successor reads of an API object.
type objectMeta struct {
	Metadata struct {
		Generation        int64             `json:"generation"`
		Labels            map[string]string `json:"labels"`
		DeletionTimestamp *string           `json:"deletionTimestamp"`
		OwnerReferences   []struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Name       string `json:"name"`
			Controller *bool  `json:"controller"`
		} `json:"ownerReferences"`
	} `json:"metadata"`
}

// Expected reports whether a successor is expected (true: stay
// installed), and why, in words for the log. An error means the API
// server could not say (unreachable, a malformed answer): the caller
// decides what to do then.
func (s Successor) Expected(ctx context.Context) (bool, string, error) {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, ns, err := s.client()
	if err != nil {
		return false, "", err
	}
	var pod objectMeta
	err = c.get(ctx, "/api/v1/namespaces/"+url.PathEscape(ns)+"/pods/"+url.PathEscape(s.Pod), &pod)
	if errors.Is(err, errGone) {
		return false, fmt.Sprintf("pod %s/%s: %v", ns, s.Pod, err), nil
	}
	if err != nil {
		return false, "", err
	}
	ds := daemonSetOwner(pod)
	if ds == "" {
		return false, fmt.Sprintf("pod %s/%s is not a DaemonSet's", ns, s.Pod), nil
	}
	podGen, _ := strconv.ParseInt(pod.Metadata.Labels[templateGenerationLabel], 10, 64)
	settle := s.Settle
	if settle <= 0 {
		settle = 2 * time.Second
	}
	start := time.Now()
	for {
		keep, why, final, err := s.owner(ctx, c, ns, ds, podGen)
		if err != nil || final || time.Since(start) >= settle {
			return keep, why, err
		}
		select {
		case <-ctx.Done():
			return false, "", fmt.Errorf("DaemonSet %s/%s: %w", ns, ds, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// owner looks at the DaemonSet ds once: gone or going means no successor
// (final); a template newer than podGen, the pod's, means an update under
// way (final); otherwise it remains, for now.
func (s Successor) owner(ctx context.Context, c *apiClient, ns, ds string, podGen int64) (keep bool, why string, final bool, err error) {
	var owner objectMeta
	err = c.get(ctx, "/apis/apps/v1/namespaces/"+url.PathEscape(ns)+"/daemonsets/"+url.PathEscape(ds), &owner)
	switch {
	case errors.Is(err, errGone):
		return false, fmt.Sprintf("DaemonSet %s/%s: %v", ns, ds, err), true, nil
	case err != nil:
		return false, "", true, err
	case owner.Metadata.DeletionTimestamp != nil:
		return false, fmt.Sprintf("DaemonSet %s/%s is being deleted", ns, ds), true, nil
	case podGen > 0 && owner.Metadata.Generation > podGen:
		return true, fmt.Sprintf("DaemonSet %s/%s is being updated (generation %d, this pod's %d): its next pod takes over",
			ns, ds, owner.Metadata.Generation, podGen), true, nil
	}
	return true, fmt.Sprintf("DaemonSet %s/%s remains: its next pod takes over", ns, ds), false, nil
}

// daemonSetOwner is the name of the DaemonSet controlling the pod, if any.
func daemonSetOwner(pod objectMeta) string {
	for _, o := range pod.Metadata.OwnerReferences {
		if o.Kind == "DaemonSet" && strings.HasPrefix(o.APIVersion, "apps/") && o.Controller != nil && *o.Controller {
			return o.Name
		}
	}
	return ""
}

// apiClient is a minimal client for two GETs with the pod's token: the
// installer links no Kubernetes client library for them.
type apiClient struct {
	http   *http.Client
	server string
	token  string
}

// client reads the service account and returns a client and the pod's
// namespace.
func (s Successor) client() (*apiClient, string, error) {
	read := func(name string) (string, error) {
		// The kubelet's projected files are symlinks (token -> ..data/token),
		// followed only as kubelet lays them out.
		b, err := readServiceAccount(s.ServiceAccountDir, name)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	}
	ca, err := read("ca.crt")
	if err != nil {
		return nil, "", err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(ca)) {
		return nil, "", errors.New("service account ca.crt: no PEM certificate")
	}
	tok, err := read("token")
	if err != nil {
		return nil, "", err
	}
	ns, err := read("namespace")
	if err != nil {
		return nil, "", err
	}
	if tok == "" || ns == "" || s.Pod == "" || s.Server == "" {
		return nil, "", errors.New("successor check: token, namespace, pod name and API server are all needed")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, Proxy: nil}
	return &apiClient{http: &http.Client{Transport: tr}, server: strings.TrimSuffix(s.Server, "/"), token: tok}, ns, nil
}

// get decodes the object at path into v. Not found, unauthorized and
// forbidden are errGone: the object, or this pod's identity, was removed.
func (c *apiClient) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.server+path, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer func() { _ = resp.Body.Close() }() // read to the end or abandoned: nothing to lose
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIResponse+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%w (HTTP %d)", errGone, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET %s: HTTP %d", path, resp.StatusCode)
	case len(body) > maxAPIResponse:
		return fmt.Errorf("GET %s: answer larger than %d bytes", path, maxAPIResponse)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// SuccessorRules are the API permissions Expected needs, in the installer
// pod's own namespace, and all it needs: the manifests' Role
// fibguard-install grants exactly these (test/manifests compares them).
func SuccessorRules() []podevent.Rule {
	return []podevent.Rule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}},
		{APIGroups: []string{"apps"}, Resources: []string{"daemonsets"}, Verbs: []string{"get"}},
	}
}
