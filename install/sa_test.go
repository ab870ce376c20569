package install

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// testCA is a self-signed CA certificate in PEM, made once per test binary.
var testCA = sync.OnceValue(func() []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fibguard-test-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
})

// fakeToken returns a JWT shaped like a projected service account token,
// with the given issue and expiry times and a signature nobody checks.
// Zero times leave the claim out.
func fakeToken(t *testing.T, iat, exp time.Time) string {
	t.Helper()
	claims := map[string]any{
		"iss": "https://kubernetes.default.svc.cluster.local",
		"sub": "system:serviceaccount:fibguard:fibguard",
		"aud": []string{"https://kubernetes.default.svc.cluster.local"},
	}
	if !iat.IsZero() {
		claims["iat"] = iat.Unix()
		claims["nbf"] = iat.Unix()
	}
	if !exp.IsZero() {
		claims["exp"] = exp.Unix()
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","kid":"test"}`)) + "." + enc(payload) + "." + enc([]byte("not-a-signature"))
}

// writeServiceAccount makes a service account directory as the kubelet
// mounts it, with token tok, and returns its path.
func writeServiceAccount(t *testing.T, dir, tok string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{
		"ca.crt":    testCA(),
		"namespace": []byte("fibguard"),
		"token":     []byte(tok),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// rotateToken replaces the token the way the kubelet's atomic writer does:
// a new file renamed over the old one.
func rotateToken(t *testing.T, saDir, tok string) {
	t.Helper()
	tmp := filepath.Join(saDir, ".token.new")
	if err := os.WriteFile(tmp, []byte(tok), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(saDir, "token")); err != nil {
		t.Fatal(err)
	}
}
