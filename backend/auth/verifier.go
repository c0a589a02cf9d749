// Package auth authenticates WebSocket clients with JSON Web Tokens and
// authorizes their subscriptions with a rules file.
//
// A [Verifier] checks tokens signed with HS256 (a shared secret) or with
// RS256/ES256 keys from a JWKS file or URL, which it caches and reloads
// when a token names a key id it does not know. [Rules] say, per channel,
// who may subscribe, the scope every change is matched against and the
// columns never sent.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrExpired is wrapped by the error [Verifier.Verify] returns for a token
// whose exp has passed.
var ErrExpired = errors.New("token expired")

// MinSecretBytes is the shortest HS256 secret [New] accepts (256 bits).
const MinSecretBytes = 32

// Options configures a [Verifier]. At least one key source (Secret,
// JWKSURL or JWKSFile) is required.
type Options struct {
	// Secret is the HS256 shared secret (RIPPLE_JWT_SECRET), at least
	// [MinSecretBytes] long. Empty: HS256 tokens are refused.
	Secret []byte
	// JWKSURL is an https URL serving a JSON Web Key Set (RIPPLE_JWKS_URL)
	// with the RS256/ES256 public keys. Empty: none.
	JWKSURL string
	// JWKSFile is a file holding a JSON Web Key Set (RIPPLE_JWKS_FILE).
	// Empty: none. Use either JWKSURL or JWKSFile.
	JWKSFile string
	// Audience, when set, must be one of the token's aud values (RIPPLE_JWT_AUDIENCE).
	Audience string
	// Issuer, when set, must equal the token's iss (RIPPLE_JWT_ISSUER).
	Issuer string
	// RefreshInterval is the least time between two reloads of the key set
	// caused by tokens naming an unknown kid, so that a flood of made-up
	// kids cannot hammer the key server. Default 5s.
	RefreshInterval time.Duration
	// MaxAge is how long a loaded key set is used before the next token
	// reloads it (so removed keys stop working). Default 1h.
	MaxAge time.Duration
	// HTTPClient fetches JWKSURL. Default: a client with a 10s timeout.
	HTTPClient *http.Client
	// Logger receives a line when a reload of the key set fails. Nil: silent.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// The defaults of Options.
const (
	DefaultRefreshInterval = 5 * time.Second
	DefaultMaxAge          = time.Hour
)

// Identity is what a verified token says about its holder.
type Identity struct {
	// Claims are the token's claims; numbers are json.Number.
	Claims map[string]any
	// Expires is the token's exp.
	Expires time.Time
}

// Verifier verifies tokens. Its methods are safe for concurrent use.
type Verifier struct {
	secret []byte
	keys   *keySet
	parser *jwt.Parser
	now    func() time.Time
}

// New returns a Verifier for opts; with a JWKS source it loads the key set
// once, so that a wrong URL or file fails at start.
func New(ctx context.Context, opts Options) (*Verifier, error) {
	if len(opts.Secret) == 0 && opts.JWKSURL == "" && opts.JWKSFile == "" {
		return nil, errors.New("auth: no key source: set a secret, a JWKS URL or a JWKS file")
	}
	if len(opts.Secret) > 0 && len(opts.Secret) < MinSecretBytes {
		return nil, fmt.Errorf("auth: the HS256 secret is %d bytes; use at least %d random bytes", len(opts.Secret), MinSecretBytes)
	}
	if opts.JWKSURL != "" && opts.JWKSFile != "" {
		return nil, errors.New("auth: set a JWKS URL or a JWKS file, not both")
	}
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = DefaultRefreshInterval
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	v := &Verifier{now: opts.Now}
	var methods []string
	if len(opts.Secret) > 0 {
		v.secret = append([]byte(nil), opts.Secret...)
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	if opts.JWKSURL != "" || opts.JWKSFile != "" {
		src, err := newSource(opts)
		if err != nil {
			return nil, err
		}
		v.keys = &keySet{source: src, refreshInterval: opts.RefreshInterval, maxAge: opts.MaxAge, now: opts.Now, log: opts.Logger}
		if err := v.keys.load(ctx); err != nil {
			return nil, err
		}
		methods = append(methods, jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg())
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithJSONNumber(),
		jwt.WithTimeFunc(opts.Now),
	}
	if opts.Audience != "" {
		popts = append(popts, jwt.WithAudience(opts.Audience))
	}
	if opts.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(opts.Issuer))
	}
	v.parser = jwt.NewParser(popts...)
	return v, nil
}

// Verify checks token's signature, alg, exp (required), nbf, and aud and
// iss when configured, and returns its holder's identity. An expired token
// returns an error wrapping [ErrExpired]. The error never holds the token.
func (v *Verifier) Verify(ctx context.Context, token string) (*Identity, error) {
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		switch t.Method.Alg() {
		case jwt.SigningMethodHS256.Alg():
			return v.secret, nil
		default:
			kid, _ := t.Header["kid"].(string)
			return v.keys.lookup(ctx, kid, t.Method.Alg())
		}
	})
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return nil, fmt.Errorf("%w: %v", ErrExpired, err)
		}
		return nil, fmt.Errorf("invalid token: %w", err)
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return nil, errors.New("invalid token: no exp")
	}
	return &Identity{Claims: claims, Expires: exp.Time}, nil
}
