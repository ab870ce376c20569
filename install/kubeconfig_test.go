package install

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestServerFromEnv(t *testing.T) {
	tests := []struct {
		host, port, want string
	}{
		{"10.96.0.1", "443", "https://10.96.0.1:443"},
		{"fd00:10:96::1", "6443", "https://[fd00:10:96::1]:6443"},
		{"", "443", ""},
		{"10.96.0.1", "", ""},
	}
	for _, tt := range tests {
		env := map[string]string{"KUBERNETES_SERVICE_HOST": tt.host, "KUBERNETES_SERVICE_PORT": tt.port}
		got, err := ServerFromEnv(func(k string) string { return env[k] })
		if tt.want == "" {
			if err == nil {
				t.Errorf("ServerFromEnv(%q, %q) = %q, want an error", tt.host, tt.port, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ServerFromEnv(%q, %q) = %q, %v; want %q", tt.host, tt.port, got, err, tt.want)
		}
	}
}

func TestParseToken(t *testing.T) {
	iat := time.Unix(1_700_000_000, 0)
	read := time.Unix(1_700_000_500, 0)
	tests := []struct {
		name      string
		tok       string
		iat, exp  time.Time
		refreshAt time.Time
		wantErr   bool
	}{
		{name: "projected token", tok: fakeToken(t, iat, iat.Add(time.Hour)), iat: iat, exp: iat.Add(time.Hour), refreshAt: iat.Add(48 * time.Minute)},
		{name: "no iat: from the time read", tok: fakeToken(t, time.Time{}, read.Add(time.Hour)), exp: read.Add(time.Hour), refreshAt: read.Add(48 * time.Minute)},
		{name: "legacy token never expires", tok: fakeToken(t, time.Time{}, time.Time{})},
		{name: "not a JWT", tok: "abc", wantErr: true},
		{name: "claims not base64", tok: "a.!!!.c", wantErr: true},
		{name: "claims not JSON", tok: "a." + base64.RawURLEncoding.EncodeToString([]byte("nope")) + ".c", wantErr: true},
		{name: "exp not a number", tok: "a." + base64.RawURLEncoding.EncodeToString([]byte(`{"exp":"soon"}`)) + ".c", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseToken(tt.tok)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseToken = %+v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseToken: %v", err)
			}
			if !got.IssuedAt.Equal(tt.iat) || !got.Expiry.Equal(tt.exp) {
				t.Errorf("iat %v exp %v, want %v %v", got.IssuedAt, got.Expiry, tt.iat, tt.exp)
			}
			if r := got.RefreshAt(read); !r.Equal(tt.refreshAt) {
				t.Errorf("RefreshAt = %v, want %v", r, tt.refreshAt)
			}
		})
	}
}

// readKubeconfig decodes the kubeconfig at path and checks its mode.
func readKubeconfig(t *testing.T, path string) kubeconfigFile {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode %v, want 0600", fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var kc kubeconfigFile
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&kc); err != nil {
		t.Fatalf("kubeconfig does not decode: %v\n%s", err, b)
	}
	return kc
}

func TestKubeconfigWrite(t *testing.T) {
	dir := t.TempDir()
	tok := fakeToken(t, time.Now(), time.Now().Add(time.Hour))
	sa := writeServiceAccount(t, filepath.Join(dir, "sa"), tok+"\n")
	k := &Kubeconfig{Path: filepath.Join(dir, "fibguard-kubeconfig"), ServiceAccountDir: sa, Server: "https://[fd00::1]:443"}
	got, err := k.Write()
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if got.Raw != tok {
		t.Errorf("Write returned token %q, want %q", got.Raw, tok)
	}
	kc := readKubeconfig(t, k.Path)
	if kc.APIVersion != "v1" || kc.Kind != "Config" || kc.CurrentContext != "fibguard" {
		t.Errorf("header = %q %q %q", kc.APIVersion, kc.Kind, kc.CurrentContext)
	}
	if len(kc.Clusters) != 1 || len(kc.Users) != 1 || len(kc.Contexts) != 1 {
		t.Fatalf("want one cluster, user and context: %+v", kc)
	}
	ca, err := base64.StdEncoding.DecodeString(kc.Clusters[0].Cluster.CertificateAuthorityData)
	if err != nil || !bytes.Equal(ca, testCA()) {
		t.Errorf("certificate-authority-data does not hold ca.crt (%v)", err)
	}
	if s := kc.Clusters[0].Cluster.Server; s != k.Server {
		t.Errorf("server %q, want %q", s, k.Server)
	}
	if u := kc.Users[0].User.Token; u != tok {
		t.Errorf("token %q, want %q (trimmed)", u, tok)
	}
	c := kc.Contexts[0]
	if c.Name != kc.CurrentContext || c.Context.Cluster != kc.Clusters[0].Name || c.Context.User != kc.Users[0].Name || c.Context.Namespace != "fibguard" {
		t.Errorf("context %+v does not tie the cluster, user and namespace together", c)
	}

	// Nothing changed: the file is not rewritten.
	before, _ := os.Stat(k.Path)
	if _, err := k.Write(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(k.Path)
	if !os.SameFile(before, after) {
		t.Error("an unchanged kubeconfig was rewritten")
	}
	// A loosened mode is repaired.
	if err := os.Chmod(k.Path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Write(); err != nil {
		t.Fatal(err)
	}
	readKubeconfig(t, k.Path)
}

func TestKubeconfigRefusals(t *testing.T) {
	good := fakeToken(t, time.Now(), time.Now().Add(time.Hour))
	tests := []struct {
		name    string
		file    string // service account file to change
		body    string // "" removes it
		wantErr string
	}{
		{"no token", "token", "", "automountServiceAccountToken"},
		{"empty token", "token", "\n", "empty"},
		{"token not a JWT", "token", "opaque", "not a JWT"},
		{"no CA", "ca.crt", "", "no such file"},
		{"CA not PEM", "ca.crt", "hello", "no PEM certificate"},
		{"CA truncated", "ca.crt", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "certificate 1"},
		{"no namespace", "namespace", "", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			sa := writeServiceAccount(t, filepath.Join(dir, "sa"), good)
			f := filepath.Join(sa, tt.file)
			var err error
			if tt.body == "" {
				err = os.Remove(f)
			} else {
				err = os.WriteFile(f, []byte(tt.body), 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
			k := &Kubeconfig{Path: filepath.Join(dir, "kc"), ServiceAccountDir: sa, Server: "https://10.96.0.1:443"}
			if _, err := k.Write(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Write error %v, want one containing %q", err, tt.wantErr)
			}
			if _, err := os.Stat(k.Path); !os.IsNotExist(err) {
				t.Errorf("a kubeconfig was written from a bad service account (%v)", err)
			}
		})
	}
}

// keepKubeconfig runs Keep until the test ends.
func keepKubeconfig(t *testing.T, k *Kubeconfig, poll time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var err error
	wg.Go(func() { err = k.Keep(ctx, poll, slog.New(slog.NewTextHandler(testWriter{t}, nil))) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if err != nil {
			t.Errorf("Keep: %v", err)
		}
	})
}

// waitForToken polls the kubeconfig until it holds tok, and returns when
// that happened; it fails the test at deadline.
func waitForToken(t *testing.T, path, tok string, deadline time.Time) time.Time {
	t.Helper()
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(path)
		if err == nil && bytes.Contains(b, []byte(tok)) {
			return time.Now()
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("kubeconfig did not get the new token by %v", deadline.Format(time.StampMilli))
	return time.Time{}
}

// TestKeepRefreshesBeforeExpiry gives Keep a token that lives four seconds
// and a poll interval of an hour: only the check at 80% of the lifetime
// can pick up the token the "kubelet" rotates after one second, and it
// must land in the kubeconfig before the old token expires.
func TestKeepRefreshesBeforeExpiry(t *testing.T) {
	dir := t.TempDir()
	iat := time.Now().Truncate(time.Second)
	exp := iat.Add(4 * time.Second)
	sa := writeServiceAccount(t, filepath.Join(dir, "sa"), fakeToken(t, iat, exp))
	k := &Kubeconfig{Path: filepath.Join(dir, "kc"), ServiceAccountDir: sa, Server: "https://10.96.0.1:443"}
	keepKubeconfig(t, k, time.Hour)

	time.Sleep(time.Second)
	next := fakeToken(t, time.Now(), time.Now().Add(time.Hour))
	rotated := time.Now()
	rotateToken(t, sa, next)
	got := waitForToken(t, k.Path, next, exp)
	refreshAt := iat.Add(time.Duration(0.8 * float64(exp.Sub(iat))))
	t.Logf("rotated at +%v, kubeconfig rewritten at +%v (refresh due +%v, expiry +%v)",
		rotated.Sub(iat).Round(time.Millisecond), got.Sub(iat).Round(time.Millisecond),
		refreshAt.Sub(iat), exp.Sub(iat))
	if got.Before(refreshAt.Add(-50 * time.Millisecond)) {
		t.Errorf("rewritten at %v, before the refresh was due (%v): the poll interval is an hour, so what triggered it?", got, refreshAt)
	}
	readKubeconfig(t, k.Path)
}

// TestKeepFollowsRotation: with a short poll, a rotated token, a renewed
// CA or a deleted kubeconfig is picked up within a few polls.
func TestKeepFollowsRotation(t *testing.T) {
	dir := t.TempDir()
	sa := writeServiceAccount(t, filepath.Join(dir, "sa"), fakeToken(t, time.Now(), time.Now().Add(time.Hour)))
	k := &Kubeconfig{Path: filepath.Join(dir, "kc"), ServiceAccountDir: sa, Server: "https://10.96.0.1:443"}
	keepKubeconfig(t, k, 20*time.Millisecond)

	next := fakeToken(t, time.Now().Add(time.Second), time.Now().Add(2*time.Hour))
	rotateToken(t, sa, next)
	waitForToken(t, k.Path, next, time.Now().Add(5*time.Second))

	if err := os.Remove(k.Path); err != nil {
		t.Fatal(err)
	}
	waitForToken(t, k.Path, next, time.Now().Add(5*time.Second))
	readKubeconfig(t, k.Path)
}

// testWriter sends log output to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
