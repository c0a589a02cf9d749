package auth

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxJWKSBytes bounds a key set read from a file or URL.
const maxJWKSBytes = 1 << 20

// minRSABits is the smallest RSA modulus accepted in a key set.
const minRSABits = 2048

// source reads the raw JSON of a key set.
type source struct {
	name  string // for errors: the URL or file name
	fetch func(ctx context.Context) ([]byte, error)
}

func newSource(opts Options) (source, error) {
	if opts.JWKSFile != "" {
		path := opts.JWKSFile
		return source{name: path, fetch: func(context.Context) ([]byte, error) {
			f, err := os.Open(path)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			return io.ReadAll(io.LimitReader(f, maxJWKSBytes))
		}}, nil
	}
	u, err := url.Parse(opts.JWKSURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return source{}, fmt.Errorf("auth: JWKS URL %q is not an http(s) URL", opts.JWKSURL)
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	target := u.String()
	return source{name: target, fetch: func(ctx context.Context) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("HTTP %s", resp.Status)
		}
		return io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes))
	}}, nil
}

// publicKey is one usable key of a key set.
type publicKey struct {
	alg string // RS256 or ES256
	key any    // *rsa.PublicKey or *ecdsa.PublicKey
}

// keySet is a cached JSON Web Key Set.
type keySet struct {
	source          source
	refreshInterval time.Duration
	maxAge          time.Duration
	now             func() time.Time
	log             *slog.Logger

	keys atomic.Pointer[map[string]publicKey] // by kid

	mu            sync.Mutex // serializes reloads and guards the fields below
	loadedAt      time.Time
	lastKidReload time.Time
}

// load reads and parses the key set and makes it current.
func (s *keySet) load(ctx context.Context) error {
	raw, err := s.source.fetch(ctx)
	if err != nil {
		return fmt.Errorf("auth: read JWKS %s: %w", s.source.name, err)
	}
	keys, err := parseJWKS(raw)
	if err != nil {
		return fmt.Errorf("auth: JWKS %s: %w", s.source.name, err)
	}
	s.keys.Store(&keys)
	s.loadedAt = s.now()
	return nil
}

// lookup returns the key named kid for alg. A key set older than maxAge is
// reloaded first; an unknown kid reloads it unless that happened less than
// refreshInterval ago. A token without kid uses the only key for its alg.
func (s *keySet) lookup(ctx context.Context, kid, alg string) (any, error) {
	s.mu.Lock()
	if s.now().Sub(s.loadedAt) > s.maxAge {
		if err := s.load(ctx); err != nil {
			// Try again after refreshInterval, not at every token.
			s.loadedAt = s.now().Add(s.refreshInterval - s.maxAge)
			s.log.Warn("could not reload the JWKS; keeping the keys loaded before", "err", err)
		}
	}
	s.mu.Unlock()
	if k, err := s.find(kid, alg); !errors.Is(err, errUnknownKid) {
		return k, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, err := s.find(kid, alg); !errors.Is(err, errUnknownKid) {
		return k, err // another token's reload brought it
	}
	if now := s.now(); now.Sub(s.lastKidReload) >= s.refreshInterval {
		s.lastKidReload = now
		if err := s.load(ctx); err != nil {
			s.log.Warn("could not reload the JWKS for an unknown key id", "err", err)
		}
	}
	return s.find(kid, alg)
}

var errUnknownKid = errors.New("no key with this kid in the JWKS")

func (s *keySet) find(kid, alg string) (any, error) {
	keys := *s.keys.Load()
	if kid == "" {
		var only *publicKey
		for _, k := range keys {
			if k.alg == alg {
				if only != nil {
					return nil, errors.New("token has no kid and the JWKS holds several keys")
				}
				only = &k
			}
		}
		if only == nil {
			return nil, errUnknownKid
		}
		return only.key, nil
	}
	k, ok := keys[kid]
	if !ok {
		return nil, errUnknownKid
	}
	if k.alg != alg {
		return nil, fmt.Errorf("key %q is for %s, token is signed with %s", kid, k.alg, alg)
	}
	return k.key, nil
}

// jwk is one JSON Web Key (RFC 7517) as far as Ripple reads it.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS returns the signature keys of a key set by kid (keys without
// a kid are stored under their position, "#0", "#1"…, so that a token
// without kid still finds a lone key). Keys for other uses or algorithms
// are skipped; a malformed RSA or EC key is an error.
func parseJWKS(raw []byte) (map[string]publicKey, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("not a JSON Web Key Set: %w", err)
	}
	keys := make(map[string]publicKey, len(set.Keys))
	for i, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		var pk publicKey
		var err error
		switch {
		case k.Kty == "RSA" && (k.Alg == "" || k.Alg == "RS256"):
			pk.alg = "RS256"
			pk.key, err = rsaKey(k)
		case k.Kty == "EC" && (k.Alg == "" || k.Alg == "ES256") && k.Crv == "P-256":
			pk.alg = "ES256"
			pk.key, err = ecKey(k)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("key %d (kid %q): %w", i, k.Kid, err)
		}
		id := k.Kid
		if id == "" {
			id = fmt.Sprintf("#%d", i)
		}
		keys[id] = pk
	}
	if len(keys) == 0 {
		return nil, errors.New("holds no RS256 or ES256 (P-256) signature key")
	}
	return keys, nil
}

func b64(field, s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("%s is not base64url", field)
	}
	return b, nil
}

func rsaKey(k jwk) (*rsa.PublicKey, error) {
	n, err := b64("n", k.N)
	if err != nil {
		return nil, err
	}
	e, err := b64("e", k.E)
	if err != nil {
		return nil, err
	}
	exp := new(big.Int).SetBytes(e)
	if !exp.IsInt64() || exp.Int64() < 3 || exp.Int64() > 1<<31-1 || exp.Bit(0) == 0 {
		return nil, errors.New("bad RSA exponent")
	}
	key := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())}
	if key.N.BitLen() < minRSABits {
		return nil, fmt.Errorf("RSA key of %d bits; at least %d required", key.N.BitLen(), minRSABits)
	}
	return key, nil
}

func ecKey(k jwk) (*ecdsa.PublicKey, error) {
	x, err := b64("x", k.X)
	if err != nil {
		return nil, err
	}
	y, err := b64("y", k.Y)
	if err != nil {
		return nil, err
	}
	if len(x) != 32 || len(y) != 32 {
		return nil, errors.New("P-256 coordinates must be 32 bytes")
	}
	point := append(append([]byte{4}, x...), y...)
	if _, err := ecdh.P256().NewPublicKey(point); err != nil {
		return nil, errors.New("point is not on P-256")
	}
	return &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}, nil
}
