package install

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fibguard/fibguard/internal/filetype"
)

// DefaultServiceAccountDir is where Kubernetes mounts a pod's service
// account: token, ca.crt, namespace.
const DefaultServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// refreshFraction is how far into a token's lifetime the kubeconfig is
// rewritten at the latest: the kubelet rotates a projected token once 80%
// of its lifetime has passed, so by then the file holds the new one.
const refreshFraction = 0.8

// kubeconfigPerm: the file holds a bearer token.
const kubeconfigPerm = 0o600

// Kubeconfig writes a kubeconfig for the plugin from the installer pod's
// service account, so that the plugin, which runs on the host outside any
// pod, can post Events with that account's rights.
//
// The token is copied into the file rather than referenced (tokenFile):
// the projected token lives in the installer pod's volume, which the
// plugin cannot rely on finding. So the file must be rewritten whenever
// the kubelet rotates the token, before the old one expires — forgetting
// to is how other chained plugins ended up failing every pod with
// "Unauthorized". Keep does that.
type Kubeconfig struct {
	// Path is the file to write, e.g. /host/etc/cni/net.d/fibguard-kubeconfig.
	Path string
	// ServiceAccountDir holds token, ca.crt and namespace.
	ServiceAccountDir string
	// Server is the API server's URL (see ServerFromEnv).
	Server string
}

// ServerFromEnv returns the API server URL a pod reaches it by:
// https://KUBERNETES_SERVICE_HOST:KUBERNETES_SERVICE_PORT (IPv6 in brackets).
func ServerFromEnv(getenv func(string) string) (string, error) {
	host, port := getenv("KUBERNETES_SERVICE_HOST"), getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return "", errors.New("KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set (the installer runs in a pod)")
	}
	return "https://" + net.JoinHostPort(host, port), nil
}

// Token is what the installer reads from a service account token, a JWT,
// without verifying it: only the API server can, and the installer only
// needs to know when to look for the next one.
type Token struct {
	Raw string
	// IssuedAt and Expiry are zero when the token does not say (a legacy
	// token from a Secret never expires).
	IssuedAt, Expiry time.Time
}

// ParseToken reads the "iat" and "exp" claims of a JWT.
func ParseToken(raw string) (Token, error) {
	t := Token{Raw: raw}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return t, fmt.Errorf("token is not a JWT: %d parts, want 3", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return t, fmt.Errorf("decoding the token's claims: %w", err)
	}
	var claims struct {
		IssuedAt *json.Number `json:"iat"`
		Expiry   *json.Number `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return t, fmt.Errorf("decoding the token's claims: %w", err)
	}
	for _, c := range []struct {
		n   *json.Number
		dst *time.Time
	}{{claims.IssuedAt, &t.IssuedAt}, {claims.Expiry, &t.Expiry}} {
		if c.n == nil {
			continue
		}
		s, err := c.n.Float64()
		if err != nil {
			return t, fmt.Errorf("decoding the token's claims: %w", err)
		}
		*c.dst = time.Unix(0, int64(s*float64(time.Second)))
	}
	return t, nil
}

// RefreshAt returns when the kubeconfig must hold a newer token: 80% of
// the way from issue to expiry (from read, if the token has no "iat").
// Zero if the token does not expire.
func (t Token) RefreshAt(read time.Time) time.Time {
	if t.Expiry.IsZero() {
		return time.Time{}
	}
	start := t.IssuedAt
	if start.IsZero() || start.After(t.Expiry) {
		start = read
	}
	return start.Add(time.Duration(refreshFraction * float64(t.Expiry.Sub(start))))
}

// Write renders the kubeconfig from the service account as it is now and
// writes it (mode 0600, by rename) unless the file already holds exactly
// that. It returns the token it used.
func (k *Kubeconfig) Write() (Token, error) {
	data, tok, err := k.render()
	if err != nil {
		return Token{}, err
	}
	if same, err := k.holds(data); err != nil || same {
		return tok, err
	}
	dir := filepath.Dir(k.Path)
	unlock, err := lockDir(dir)
	if err != nil {
		return Token{}, err
	}
	defer unlock()
	if err := removeTemps(dir, "."+filepath.Base(k.Path)+tmpMarker+"*"); err != nil {
		return Token{}, err
	}
	if err := writeFile(k.Path, data, kubeconfigPerm, -1, -1, nil); err != nil {
		return Token{}, fmt.Errorf("writing the kubeconfig: %w", err)
	}
	return tok, nil
}

// holds reports whether the kubeconfig file already is data, with mode
// 0600. The file is the installer's by name, but what is there is looked
// at before it is read: a link, a FIFO, a directory or a device is
// refused, never followed, opened or replaced.
func (k *Kubeconfig) holds(data []byte) (bool, error) {
	var st unix.Stat_t
	err := unix.Lstat(k.Path, &st)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checking the kubeconfig %s: %w", k.Path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return false, fmt.Errorf("the kubeconfig %s is a %s, not a regular file: the installer neither follows, opens nor replaces it; remove it",
			k.Path, filetype.Name(st.Mode))
	}
	cur, state, err := readFile(k.Path)
	if err != nil {
		return false, nil //nolint:nilerr // unreadable (too large, say): rewritten
	}
	return bytes.Equal(cur, data) && state.mode.Perm() == kubeconfigPerm, nil
}

// Remove removes the kubeconfig.
func (k *Kubeconfig) Remove() error { return removeFile(k.Path) }

// Keep rewrites the kubeconfig until ctx is done: every poll interval it
// reads the service account again and rewrites the file if anything
// changed (the kubelet rotated the token, the CA was renewed, the file was
// deleted), and it also reads it at the token's RefreshAt, whatever the
// interval. A failed pass is logged and retried at the next one; the file
// keeps the last good token meanwhile. It returns nil when ctx is done.
func (k *Kubeconfig) Keep(ctx context.Context, poll time.Duration, log *slog.Logger) error {
	tok, err := k.Write()
	if err != nil {
		return err
	}
	read := time.Now()
	for {
		wait := poll
		if r := tok.RefreshAt(read); !r.IsZero() {
			if d := time.Until(r); d > 0 && d < wait {
				wait = d
			}
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
		next, err := k.Write()
		if err != nil {
			log.Error("refreshing the kubeconfig failed; it keeps the previous token", "path", k.Path, "err", err)
			continue
		}
		now := time.Now()
		switch {
		case next.Raw != tok.Raw:
			log.Info("kubeconfig rewritten with a new token", "path", k.Path, "expiry", next.Expiry)
			read = now
		case !tok.Expiry.IsZero() && now.After(tok.Expiry):
			log.Error("the service account token has expired and the kubelet has not written a new one; the plugin's Events will be refused", "expiry", tok.Expiry)
		case !tok.RefreshAt(read).IsZero() && now.After(tok.RefreshAt(read)):
			log.Warn("the service account token is due for rotation and the kubelet has not written a new one yet", "expiry", tok.Expiry)
		}
		tok = next
	}
}

// kubeconfigFile is the part of the kubeconfig format (clientcmd v1) that
// the installer writes. It is written as JSON, which is YAML too: no
// quoting rules to get wrong.
type kubeconfigFile struct {
	APIVersion     string         `json:"apiVersion"`
	Kind           string         `json:"kind"`
	Clusters       []namedCluster `json:"clusters"`
	Users          []namedUser    `json:"users"`
	Contexts       []namedContext `json:"contexts"`
	CurrentContext string         `json:"current-context"`
}

type namedCluster struct {
	Name    string `json:"name"`
	Cluster struct {
		Server                   string `json:"server"`
		CertificateAuthorityData string `json:"certificate-authority-data"`
	} `json:"cluster"`
}

type namedUser struct {
	Name string `json:"name"`
	User struct {
		Token string `json:"token"`
	} `json:"user"`
}

type namedContext struct {
	Name    string `json:"name"`
	Context struct {
		Cluster   string `json:"cluster"`
		User      string `json:"user"`
		Namespace string `json:"namespace"`
	} `json:"context"`
}

// render reads the service account and returns the kubeconfig's bytes.
func (k *Kubeconfig) render() ([]byte, Token, error) {
	read := func(name string) ([]byte, error) { return readServiceAccount(k.ServiceAccountDir, name) }
	ca, err := read("ca.crt")
	if err != nil {
		return nil, Token{}, err
	}
	if err := checkCA(ca); err != nil {
		return nil, Token{}, fmt.Errorf("service account ca.crt: %w", err)
	}
	rawTok, err := read("token")
	if err != nil {
		return nil, Token{}, err
	}
	ns, err := read("namespace")
	if err != nil {
		return nil, Token{}, err
	}
	tokText := strings.TrimSpace(string(rawTok))
	if tokText == "" {
		return nil, Token{}, errors.New("service account token is empty")
	}
	tok, err := ParseToken(tokText)
	if err != nil {
		return nil, Token{}, fmt.Errorf("service account token: %w", err)
	}
	if k.Server == "" {
		return nil, Token{}, errors.New("kubeconfig: no API server URL")
	}
	const name = "fibguard"
	var f kubeconfigFile
	f.APIVersion, f.Kind, f.CurrentContext = "v1", "Config", name
	var c namedCluster
	c.Name = name
	c.Cluster.Server = k.Server
	c.Cluster.CertificateAuthorityData = base64.StdEncoding.EncodeToString(ca)
	var u namedUser
	u.Name = name
	u.User.Token = tokText
	var x namedContext
	x.Name = name
	x.Context.Cluster, x.Context.User, x.Context.Namespace = name, name, strings.TrimSpace(string(ns))
	f.Clusters, f.Users, f.Contexts = []namedCluster{c}, []namedUser{u}, []namedContext{x}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, Token{}, fmt.Errorf("encoding the kubeconfig: %w", err)
	}
	return append(b, '\n'), tok, nil
}

// checkCA makes sure ca.crt holds at least one PEM certificate, so that a
// truncated or empty file is reported here rather than as TLS errors in
// every plugin call.
func checkCA(b []byte) error {
	n := 0
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return fmt.Errorf("certificate %d: %w", n+1, err)
		}
		n++
	}
	if n == 0 {
		return errors.New("no PEM certificate")
	}
	return nil
}
