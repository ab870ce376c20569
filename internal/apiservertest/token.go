package apiservertest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// ExpiryLeeway is how long the API server still accepts a service-account
// token after its expiry (go-jose's jwt.DefaultLeeway, which the
// service-account authenticator uses): a token minted with an expiry more
// than ExpiryLeeway in the past is refused as expired at once.
const ExpiryLeeway = time.Minute

// TokenCacheTTL is how long kube-apiserver keeps a successful token review
// in its cache (TokenSuccessCacheTTL), whatever the token's expiry: a token
// of a deleted ServiceAccount is refused only once its cached review has
// expired, and a token used shortly before it expires can be accepted up to
// ExpiryLeeway + TokenCacheTTL after its expiry.
const TokenCacheTTL = 10 * time.Second

// MintToken signs a service-account token for acct with the API server's
// own signing key, valid from issuedAt until expires. The API server
// accepts it exactly like one it issued through TokenRequest (same issuer,
// audience, key ID and claims, the account's UID), but its lifetime is
// free: a few seconds, or already over. That is how tests get short-lived
// and expired tokens, which TokenRequest (10 minutes at least) cannot give.
// Remember ExpiryLeeway: a token counts as expired only a minute after its
// expiry.
func (c *Cluster) MintToken(acct Account, issuedAt, expires time.Time) (string, error) {
	if !expires.After(issuedAt) {
		return "", fmt.Errorf("minting a token for %s: expiry %v is not after issue time %v", acct.Username(), expires, issuedAt)
	}
	der, err := x509.MarshalPKIXPublicKey(&c.saKey.PublicKey)
	if err != nil {
		return "", fmt.Errorf("minting a token: %w", err)
	}
	// The key ID the API server derives from its key (pkg/serviceaccount
	// keyIDFromPublicKey): SHA-256 of the DER public key, base64url.
	kid := sha256.Sum256(der)
	header := map[string]string{"alg": "RS256", "kid": base64.RawURLEncoding.EncodeToString(kid[:])}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("minting a token: %w", err)
	}
	claims := map[string]any{
		"iss": c.Issuer,
		"aud": []string{c.Issuer}, // --api-audiences defaults to the issuer
		"sub": acct.Username(),
		"iat": issuedAt.Unix(),
		"nbf": issuedAt.Unix(),
		"exp": expires.Unix(),
		"jti": fmt.Sprintf("%x", jti),
		"kubernetes.io": map[string]any{
			"namespace":      acct.Namespace,
			"serviceaccount": map[string]string{"name": acct.Name, "uid": string(acct.UID)},
		},
	}
	h, err := json.Marshal(header)
	if err != nil {
		return "", fmt.Errorf("minting a token: %w", err)
	}
	p, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("minting a token: %w", err)
	}
	signed := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	digest := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(nil, c.saKey, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("minting a token: signing: %w", err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
