package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

// rsaKeys and ecKeys are made once: RSA key generation is slow.
var (
	rsaKey1, rsaKey2 = mustRSA(), mustRSA()
	ecKey1           = mustEC()
)

func mustRSA() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

func mustEC() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func sign(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func valid(extra jwt.MapClaims) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "u1", "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, k *rsa.PrivateKey) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": b64u(k.N.Bytes()), "e": b64u(big.NewInt(int64(k.E)).Bytes())}
}

func ecJWK(kid string, k *ecdsa.PrivateKey) map[string]any {
	pub, err := k.PublicKey.Bytes()
	if err != nil {
		panic(err)
	}
	return map[string]any{"kty": "EC", "kid": kid, "crv": "P-256", "x": b64u(pub[1:33]), "y": b64u(pub[33:])}
}

func jwks(keys ...map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return b
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	// Write then rename, as a key rotation job would: readers never see half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "jwks.json")
	writeFile(t, file, jwks(rsaJWK("r1", rsaKey1), ecJWK("e1", ecKey1)))
	v, err := New(context.Background(), Options{Secret: secret, JWKSFile: file, Audience: "ripple", Issuer: "https://idp"})
	if err != nil {
		t.Fatal(err)
	}
	good := jwt.MapClaims{"aud": "ripple", "iss": "https://idp"}
	noneToken := func() string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodNone, valid(good)).SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	tests := []struct {
		name    string
		token   string
		wantErr string // "" for success
		expired bool
	}{
		{"HS256", sign(t, jwt.SigningMethodHS256, secret, "", valid(good)), "", false},
		{"RS256", sign(t, jwt.SigningMethodRS256, rsaKey1, "r1", valid(good)), "", false},
		{"ES256", sign(t, jwt.SigningMethodES256, ecKey1, "e1", valid(good)), "", false},
		{"bad signature", sign(t, jwt.SigningMethodHS256, []byte("another secret of thirty-two byt"), "", valid(good)), "signature", false},
		{"RS256 with a key not in the set", sign(t, jwt.SigningMethodRS256, rsaKey2, "r1", valid(good)), "verification error", false},
		{"alg none", noneToken, "signing method", false},
		{"HS384 not allowed", sign(t, jwt.SigningMethodHS384, secret, "", valid(good)), "signing method", false},
		{"RS256 under an EC kid", sign(t, jwt.SigningMethodRS256, rsaKey1, "e1", valid(good)), "is for ES256", false},
		{"wrong aud", sign(t, jwt.SigningMethodHS256, secret, "", valid(jwt.MapClaims{"aud": "other", "iss": "https://idp"})), "audience", false},
		{"wrong iss", sign(t, jwt.SigningMethodHS256, secret, "", valid(jwt.MapClaims{"aud": "ripple", "iss": "evil"})), "issuer", false},
		{"expired", sign(t, jwt.SigningMethodHS256, secret, "", jwt.MapClaims{"aud": "ripple", "iss": "https://idp", "exp": time.Now().Add(-time.Minute).Unix()}), "expired", true},
		{"no exp", sign(t, jwt.SigningMethodHS256, secret, "", jwt.MapClaims{"aud": "ripple", "iss": "https://idp"}), "exp", false},
		{"not a token", "garbage", "malformed", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := v.Verify(context.Background(), tt.token)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if id.Claims["sub"] != "u1" || time.Until(id.Expires) < 50*time.Minute {
					t.Fatalf("identity %+v", id)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Verify: %v, want an error about %q", err, tt.wantErr)
			}
			if errors.Is(err, ErrExpired) != tt.expired {
				t.Fatalf("errors.Is(%v, ErrExpired) = %v", err, !tt.expired)
			}
			if strings.Contains(err.Error(), tt.token) {
				t.Fatal("the error holds the token")
			}
		})
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	writeFile(t, bad, []byte(`{"keys":[{"kty":"oct","k":"abc"}]}`))
	for _, tt := range []struct {
		name string
		opts Options
		want string
	}{
		{"no key source", Options{}, "no key source"},
		{"short secret", Options{Secret: []byte("short")}, "at least 32"},
		{"URL and file", Options{JWKSURL: "https://x/jwks", JWKSFile: bad}, "not both"},
		{"missing file", Options{JWKSFile: filepath.Join(dir, "none.json")}, "read JWKS"},
		{"no usable key", Options{JWKSFile: bad}, "no RS256 or ES256"},
		{"not http", Options{JWKSURL: "ftp://x/jwks"}, "not an http(s) URL"},
	} {
		if _, err := New(context.Background(), tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New = %v, want an error about %q", tt.name, err, tt.want)
		}
	}
}

func TestJWKSFileRotation(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "jwks.json")
	writeFile(t, file, jwks(rsaJWK("old", rsaKey1)))
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	v, err := New(context.Background(), Options{JWKSFile: file, RefreshInterval: time.Minute, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{"exp": now.Add(time.Hour).Unix()}
	newTok := sign(t, jwt.SigningMethodRS256, rsaKey2, "new", claims)
	// An unknown kid before the rotation reloads the file (once) and fails.
	if _, err := v.Verify(context.Background(), newTok); err == nil {
		t.Fatal("a token of a key not yet published was accepted")
	}
	writeFile(t, file, jwks(rsaJWK("new", rsaKey2)))
	if _, err := v.Verify(context.Background(), newTok); err == nil {
		t.Fatal("reloaded twice within the refresh interval")
	}
	now = now.Add(time.Minute)
	if _, err := v.Verify(context.Background(), newTok); err != nil {
		t.Fatalf("the new key was not picked up: %v", err)
	}
	// The old key left the set: its tokens fail once the set was reloaded.
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, rsaKey1, "old", claims)); err == nil {
		t.Fatal("a token of a removed key was accepted")
	}
}

func TestJWKSURLCachedAndRateLimited(t *testing.T) {
	t.Parallel()
	var body atomic.Pointer[[]byte]
	first := jwks(ecJWK("a", ecKey1))
	body.Store(&first)
	var fetches atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		_, _ = w.Write(*body.Load())
	}))
	t.Cleanup(ts.Close)
	v, err := New(context.Background(), Options{JWKSURL: ts.URL, RefreshInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jwt.SigningMethodES256, ecKey1, "a", valid(nil))
	for range 5 {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for one key set, want 1 (cached)", n)
	}
	// Made-up kids reload at most once per RefreshInterval.
	for i := range 20 {
		if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, ecKey1, "made-up-"+string(rune('a'+i)), valid(nil))); err == nil {
			t.Fatal("a token with an unknown kid was accepted")
		}
	}
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after a flood of unknown kids, want 2", n)
	}
}

func TestTokenWithoutKidUsesTheOnlyKey(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "jwks.json")
	writeFile(t, file, jwks(ecJWK("", ecKey1)))
	v, err := New(context.Background(), Options{JWKSFile: file})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, ecKey1, "", valid(nil))); err != nil {
		t.Fatal(err)
	}
}
