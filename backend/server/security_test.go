package server_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/lxzan/gws"

	"github.com/ripple-rt/ripple/backend/config"
	"github.com/ripple-rt/ripple/backend/protocol"
	"github.com/ripple-rt/ripple/backend/server"
	"github.com/ripple-rt/ripple/schema"
)

const (
	testSecret = "security-test-secret-of-32-bytes!"
	testOrigin = "https://app.example.com"
)

// securityRules scope projects by organization, hide api_key, and let only
// members subscribe; items are open to anyone authenticated; "others" has
// no rule, so it is forbidden.
const securityRules = `{
  "channels": {
    "projects": {
      "allow": [{"claim": "role", "in": ["member", "admin"]}],
      "scope": [{"column": "organization_id", "claim": "org_id"}],
      "omit": ["api_key"]
    },
    "legacy_projects": {
      "scope": [{"column": "organization_id", "claim": "org_id"}],
      "omit": ["api_key"]
    },
    "items": {}
  }
}`

const projectsTable = `
CREATE TABLE projects (id bigint PRIMARY KEY, organization_id text NOT NULL, name text, api_key text);
-- A table on the seed's own trigger: its UPDATEs carry no old row.
CREATE TABLE legacy_projects (id bigint PRIMARY KEY, organization_id text NOT NULL, name text, api_key text);
CREATE TRIGGER legacy_projects_notify AFTER INSERT OR UPDATE OR DELETE ON legacy_projects
  FOR EACH ROW EXECUTE FUNCTION public.notify_row_change();`

// secure starts a gateway with RIPPLE_AUTH=jwt (HS256, audience "ripple"),
// the rules above, FRONTEND_URL and a projects table; edit may change the
// configuration first.
func secure(t *testing.T, edit func(*config.Config)) *env {
	t.Helper()
	rules := filepath.Join(t.TempDir(), "rules.json")
	if err := os.WriteFile(rules, []byte(securityRules), 0o600); err != nil {
		t.Fatal(err)
	}
	e := start(t, func(c *config.Config) {
		c.Auth, c.JWTSecret, c.JWTAudience, c.RulesFile = "jwt", testSecret, "ripple", rules
		c.Channels = append(c.Channels, "projects", "legacy_projects")
		c.AllowedOrigins = []string{testOrigin}
		c.AuthTimeout = time.Second
		if edit != nil {
			edit(c)
		}
	})
	e.exec(projectsTable)
	if err := schema.Enable(context.Background(), e.db, "projects"); err != nil {
		t.Fatal(err)
	}
	return e
}

// claims are a member of org with a token valid for an hour.
func claims(org string) jwt.MapClaims {
	return jwt.MapClaims{"sub": "user-" + org, "aud": "ripple", "role": "member", "org_id": org,
		"exp": time.Now().Add(time.Hour).Unix()}
}

func hs256(t *testing.T, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func with(c jwt.MapClaims, k string, v any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for a, b := range c {
		out[a] = b
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

// authed dials and authenticates with token in an auth message, proving
// the token was accepted with a ping round trip.
func authed(t *testing.T, e *env, token string) *client {
	t.Helper()
	c := dial(t, e.url, protocol.Subprotocol)
	c.send(protocol.AuthMessage{Type: "auth", Token: token})
	c.roundTrip("authed")
	return c
}

// expectRefused reads frames until an error, checks its code, and then
// checks the close code.
func expectRefused(t *testing.T, c *client, code protocol.ErrorCode, closeCode uint16) {
	t.Helper()
	f := c.next()
	if f.Type != "error" || f.Code != string(code) {
		t.Fatalf("got %s, want error %s", f.raw, code)
	}
	if closeCode != 0 {
		assertCloseCode(t, c.waitClose(), closeCode)
	}
}

// noData fails if raw holds any of the words.
func noData(t *testing.T, raw []byte, words ...string) {
	t.Helper()
	for _, w := range words {
		if strings.Contains(string(raw), w) {
			t.Fatalf("%s leaks %q", raw, w)
		}
	}
}

func TestAuthenticationAttacks(t *testing.T) {
	t.Parallel()
	e := secure(t, nil)
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims("org-a")).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims("org-a")).SignedString([]byte("another-secret-another-secret-32b"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		urlToken  string // access_token on the URL
		authToken string // token of an auth message
		want      protocol.ErrorCode
	}{
		{"bad signature", "", forged, protocol.ErrUnauthorized},
		{"alg none", "", none, protocol.ErrUnauthorized},
		{"wrong aud", "", hs256(t, with(claims("org-a"), "aud", "another-app")), protocol.ErrUnauthorized},
		{"no exp", "", hs256(t, with(claims("org-a"), "exp", nil)), protocol.ErrUnauthorized},
		{"expired", "", hs256(t, with(claims("org-a"), "exp", time.Now().Add(-time.Minute).Unix())), protocol.ErrTokenExpired},
		{"garbage", "", "not.a.jwt", protocol.ErrUnauthorized},
		{"bad signature on the URL", forged, "", protocol.ErrUnauthorized},
		{"expired on the URL", hs256(t, with(claims("org-a"), "exp", time.Now().Add(-time.Minute).Unix())), "", protocol.ErrTokenExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := e.url
			if tt.urlToken != "" {
				u += "?access_token=" + url.QueryEscape(tt.urlToken)
			}
			c := dial(t, u, protocol.Subprotocol)
			if tt.authToken != "" {
				c.send(protocol.AuthMessage{Type: "auth", Token: tt.authToken})
			}
			expectRefused(t, c, tt.want, protocol.CloseUnauthorized)
		})
	}
}

func TestNoTokenGetsUnauthorizedThenClose(t *testing.T) {
	t.Parallel()
	e := secure(t, nil)
	c := dial(t, e.url, protocol.Subprotocol)
	c.send(protocol.SubscribeMessage{Type: "subscribe", Sub: "s", Channel: "items"})
	if f := c.expect("error"); f.Code != string(protocol.ErrUnauthorized) || f.Sub != "s" {
		t.Fatalf("subscribe before auth: %s", f.raw)
	}
	c.roundTrip("still open during the grace period")
	// No token within RIPPLE_AUTH_TIMEOUT (1s here): unauthorized and 4001.
	expectRefused(t, c, protocol.ErrUnauthorized, protocol.CloseUnauthorized)

	seed := dial(t, e.url, "") // the seed protocol can only bring its token on the URL
	assertCloseCode(t, seed.waitClose(), protocol.CloseUnauthorized)
}

func TestTokenOnTheURL(t *testing.T) {
	t.Parallel()
	e := secure(t, nil)
	c := dial(t, e.url+"?access_token="+url.QueryEscape(hs256(t, claims("org-a"))), protocol.Subprotocol)
	c.subscribe("s", "items", nil)
	e.exec(`INSERT INTO items VALUES (1, 1, 'x')`)
	expectChange(t, c, "s", protocol.OpInsert, 1, 1)
}

func TestExpiredTokenClosesUnlessRefreshed(t *testing.T) {
	t.Parallel()
	e := secure(t, nil)
	short := hs256(t, with(claims("org-a"), "exp", time.Now().Add(2*time.Second).Unix()))
	lapsing := authed(t, e, short)
	refreshed := authed(t, e, short)
	lapsing.subscribe("s", "items", nil)
	refreshed.subscribe("s", "items", nil)
	refreshed.send(protocol.AuthMessage{Type: "auth", Token: hs256(t, claims("org-a"))})
	refreshed.roundTrip("fresh token accepted")

	expectRefused(t, lapsing, protocol.ErrTokenExpired, protocol.CloseUnauthorized)
	// Both tokens expired in the same tick: the refreshed connection lives on.
	refreshed.roundTrip("alive after the first token's exp")
	e.exec(`INSERT INTO items VALUES (1, 1, 'x')`)
	expectChange(t, refreshed, "s", protocol.OpInsert, 1, 1)
}

func TestReauthWithAnotherOrgEndsScopedSubscriptions(t *testing.T) {
	t.Parallel()
	e := secure(t, nil)
	c := authed(t, e, hs256(t, claims("org-a")))
	c.subscribe("p", "projects", nil)
	c.subscribe("i", "items", nil)
	c.send(protocol.AuthMessage{Type: "auth", Token: hs256(t, claims("org-b"))})
	if f := c.expect("error"); f.Code != string(protocol.ErrForbidden) || f.Sub != "p" {
		t.Fatalf("re-auth as another org: %s, want forbidden for p", f.raw)
	}
	e.exec(`INSERT INTO projects VALUES (1, 'org-a', 'a', 'k')`)
	e.exec(`INSERT INTO items VALUES (1, 1, 'x')`)
	expectChange(t, c, "i", protocol.OpInsert, 1, 1) // nothing of org-a's project came first
}

func TestAuthorizationAttacks(t *testing.T) {
	t.Parallel()
	e := secure(t, nil)
	tests := []struct {
		name    string
		claims  jwt.MapClaims
		channel string
		filter  *protocol.Filter
		want    protocol.ErrorCode // "" for subscribed
	}{
		{"channel without a rule", claims("org-a"), "others", nil, protocol.ErrForbidden},
		{"role not allowed", with(claims("org-a"), "role", "guest"), "projects", nil, protocol.ErrForbidden},
		{"no org claim", with(claims("org-a"), "org_id", nil), "projects", nil, protocol.ErrForbidden},
		{"org claim of the wrong type", with(claims("org-a"), "org_id", map[string]any{"id": "org-b"}), "projects", nil, protocol.ErrForbidden},
		{"unknown channel", claims("org-a"), "pg_authid", nil, protocol.ErrUnknownChannel},
		{"filter on org B is accepted but only narrows", claims("org-a"), "projects",
			&protocol.Filter{Column: "organization_id", Op: protocol.FilterEq, Value: "org-b"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := authed(t, e, hs256(t, tt.claims))
			c.send(protocol.SubscribeMessage{Type: "subscribe", Sub: "s", Channel: tt.channel, Filter: tt.filter})
			f := c.next()
			if tt.want == "" {
				if f.Type != "subscribed" {
					t.Fatalf("got %s, want subscribed", f.raw)
				}
				return
			}
			if f.Type != "error" || f.Code != string(tt.want) || f.Sub != "s" {
				t.Fatalf("got %s, want error %s", f.raw, tt.want)
			}
			c.roundTrip("the connection stays usable")
		})
	}
}

func TestScopesKeepOrganizationsApart(t *testing.T) {
	t.Parallel()
	e := secure(t, nil)
	a := authed(t, e, hs256(t, claims("org-a")))
	b := authed(t, e, hs256(t, claims("org-b")))
	a.subscribe("p", "projects", nil)
	// Org A's client asks for org B's rows through its filter: the scope
	// still holds, so this subscription never receives anything.
	a.subscribe("sneaky", "projects", &protocol.Filter{Column: "organization_id", Op: protocol.FilterIn, Value: []any{"org-a", "org-b"}})
	b.subscribe("p", "projects", nil)

	e.exec(`INSERT INTO projects VALUES (1, 'org-b', 'b-secret-name', 'key-b1')`)
	e.exec(`INSERT INTO projects VALUES (2, 'org-a', 'a-name', 'key-a2')`)
	f := expectChange(t, b, "p", protocol.OpInsert, 1, 1)
	noData(t, f.raw, "key-b1", "api_key")
	for _, sub := range []string{"p", "sneaky"} { // the same change, in subscription order
		f = a.expect("change")
		if f.Sub != sub || f.Seq != 2 || f.Change.New["id"] != float64(2) {
			t.Fatalf("org A got %s, want only its own row (seq 2) on %s", f.raw, sub)
		}
		noData(t, f.raw, "b-secret-name", "key-", "api_key")
	}

	// Row 2 moves from org A to org B: A sees a DELETE with what it knew, B an INSERT.
	e.exec(`UPDATE projects SET organization_id = 'org-b', name = 'now-b', api_key = 'key-b2' WHERE id = 2`)
	for range 2 {
		f = a.expect("change")
		if f.Change.Op != protocol.OpDelete || f.Change.Old["id"] != float64(2) || f.Change.Old["organization_id"] != "org-a" || f.Change.New != nil {
			t.Fatalf("org A got %s, want a DELETE of row 2 as it was", f.raw)
		}
		noData(t, f.raw, "now-b", "key-", "org-b", "api_key")
	}
	f = expectChange(t, b, "p", protocol.OpInsert, 3, 2)
	if f.Change.New["name"] != "now-b" || f.Change.Old != nil {
		t.Fatalf("org B got %s, want an INSERT of row 2", f.raw)
	}
	noData(t, f.raw, "a-name", "key-", "org-a", "api_key")

	// Changes inside org B no longer reach A; a marker row in A proves it.
	e.exec(`UPDATE projects SET name = 'b-renamed' WHERE id = 2`)
	e.exec(`INSERT INTO projects VALUES (3, 'org-a', 'marker', NULL)`)
	expectChange(t, b, "p", protocol.OpUpdate, 4, 2)
	expectChange(t, a, "p", protocol.OpInsert, 5, 3)
	expectChange(t, a, "sneaky", protocol.OpInsert, 5, 3)
}

func TestRowLeavingTheScopeWithoutOldRow(t *testing.T) {
	t.Parallel()
	e := secure(t, nil)
	a := authed(t, e, hs256(t, claims("org-a")))
	b := authed(t, e, hs256(t, claims("org-b")))
	a.subscribe("l", "legacy_projects", nil)
	b.subscribe("l", "legacy_projects", nil)
	e.exec(`INSERT INTO legacy_projects VALUES (1, 'org-a', 'a-name', 'key-1')`)
	expectChange(t, a, "l", protocol.OpInsert, 1, 1)
	// The seed's trigger sends no old row: the gateway cannot tell that
	// row 1 was org A's, so A gets a DELETE carrying the key alone.
	e.exec(`UPDATE legacy_projects SET organization_id = 'org-b', name = 'b-name', api_key = 'key-2' WHERE id = 1`)
	f := expectChange(t, a, "l", protocol.OpDelete, 2, 1)
	if len(f.Change.Old) != 1 || f.Change.New != nil {
		t.Fatalf("org A got %s, want a DELETE with only the key", f.raw)
	}
	f = expectChange(t, b, "l", protocol.OpUpdate, 2, 1)
	if f.Change.New["name"] != "b-name" {
		t.Fatalf("org B got %s", f.raw)
	}
	noData(t, f.raw, "key-", "api_key")
}

func TestOmittedColumnsNeverSent(t *testing.T) {
	t.Parallel()
	e := secure(t, nil)
	token := hs256(t, claims("org-a"))
	c := authed(t, e, token)
	c.subscribe("p", "projects", nil)
	seed := dial(t, e.url+"?access_token="+url.QueryEscape(token), "")
	seed.send(map[string]string{"type": "subscribe", "channel": "projects"})
	waitFor(t, "the seed subscription", func() bool { return metric(t, e.srv.URL(), "ripple_subscriptions") == 2 })

	e.exec(`INSERT INTO projects VALUES (1, 'org-a', 'n', 'key-insert')`)
	e.exec(`UPDATE projects SET api_key = 'key-update', name = 'n2' WHERE id = 1`)
	big := strings.Repeat("hydrated ", 1200) // over pg_notify's 8000 bytes: truncated, then hydrated
	e.exec(`INSERT INTO projects VALUES (2, 'org-a', $1, 'key-hydrated')`, big)
	e.exec(`DELETE FROM projects WHERE id = 1`)
	want := []protocol.Op{protocol.OpInsert, protocol.OpUpdate, protocol.OpInsert, protocol.OpDelete}

	check := func(who string, f frame, i int) {
		t.Helper()
		if f.Change.Op != want[i] {
			t.Fatalf("%s: change %d is %s, want %s", who, i, f.raw, want[i])
		}
		noData(t, f.raw, "key-", "api_key")
		if i == 2 && f.Change.New["name"] != big {
			t.Fatalf("%s: the large row was not hydrated: %.200s", who, f.raw)
		}
	}
	for i := range want {
		check("live", c.expect("change"), i)
	}
	for i := range want {
		f := seed.next()
		if err := json.Unmarshal(f.raw, &f.Change); err != nil { // a bare payload
			t.Fatal(err)
		}
		check("seed", f, i)
	}
	// Replay from the ring obeys the same view.
	r := authed(t, e, token)
	r.send(protocol.SubscribeMessage{Type: "subscribe", Sub: "r", Channel: "projects", Resume: &protocol.Position{Epoch: e.srv.Epoch(), Seq: 0}})
	r.expect("subscribed")
	for i := range want {
		check("replay", r.expect("change"), i)
	}
}

func TestForgedResumePositions(t *testing.T) {
	t.Parallel()
	e := secure(t, nil)
	e.exec(`INSERT INTO projects VALUES (1, 'org-b', 'b-name', 'key-b')`)
	e.exec(`INSERT INTO projects VALUES (2, 'org-a', 'a-name', 'key-a')`)
	waitFor(t, "both changes in the ring", func() bool { return metric(t, e.srv.URL(), `ripple_notifications_in_total{channel="projects"}`) == 2 })
	tests := []struct {
		name   string
		resume protocol.Position
		resync string // "" for a replay
	}{
		{"forged epoch", protocol.Position{Epoch: "forged", Seq: 0}, string(protocol.ResyncEpoch)},
		{"seq from the future", protocol.Position{Epoch: e.srv.Epoch(), Seq: 1 << 40}, string(protocol.ResyncTooOld)},
		{"replay from the start shows only the own org", protocol.Position{Epoch: e.srv.Epoch(), Seq: 0}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := authed(t, e, hs256(t, claims("org-a")))
			c.send(protocol.SubscribeMessage{Type: "subscribe", Sub: "r", Channel: "projects", Resume: &tt.resume})
			c.expect("subscribed")
			f := c.next()
			if tt.resync != "" {
				if f.Type != "resync" || f.Reason != tt.resync {
					t.Fatalf("got %s, want resync %s", f.raw, tt.resync)
				}
				return
			}
			if f.Type != "change" || f.Seq != 2 {
				t.Fatalf("got %s, want org A's change (seq 2) only", f.raw)
			}
			noData(t, f.raw, "b-name", "key-")
		})
	}
}

func TestDisallowedOriginGetsAClear403(t *testing.T) {
	t.Parallel()
	e := secure(t, nil)
	for _, tt := range []struct {
		origin string
		want   int
	}{
		{"https://evil.example.com", http.StatusForbidden},
		{testOrigin, http.StatusBadRequest}, // allowed; this plain GET is then no WebSocket handshake
	} {
		req, err := http.NewRequest(http.MethodGet, e.srv.URL()+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", tt.origin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Fatalf("origin %s: HTTP %d %s, want %d", tt.origin, resp.StatusCode, body, tt.want)
		}
		if tt.want == http.StatusForbidden && (!strings.Contains(string(body), tt.origin) || !strings.Contains(string(body), "FRONTEND_URL")) {
			t.Fatalf("403 body %q does not say which origin and which setting", body)
		}
	}
}

func TestOversizeAndFloodInput(t *testing.T) {
	t.Parallel()
	e := secure(t, func(c *config.Config) { c.SubscribeRate = 1 }) // bursts of MaxSubscriptions (5)
	token := hs256(t, claims("org-a"))

	big := authed(t, e, token)
	big.send(protocol.PingMessage{Type: "ping", Ref: strings.Repeat("x", 5000)}) // over MaxMessageBytes (4096)
	expectRefused(t, big, protocol.ErrMessageTooLarge, protocol.ClosePolicy)

	flood := authed(t, e, token)
	for i := range 40 {
		msg := fmt.Sprintf(`{"type":"subscribe","sub":"s%d","channel":"items"}`, i)
		if flood.conn.WriteMessage(gws.OpcodeText, []byte(msg)) != nil {
			break // closed by the gateway mid-flood
		}
	}
	limited := 0
	for {
		select {
		case f := <-flood.frames:
			if f.Code == string(protocol.ErrRateLimited) {
				limited++
			}
			continue
		case err := <-flood.closed:
			assertCloseCode(t, err, protocol.ClosePolicy)
			for len(flood.frames) > 0 { // frames read before the close
				if f := <-flood.frames; f.Code == string(protocol.ErrRateLimited) {
					limited++
				}
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a flood of subscribes did not close the connection")
		}
		break
	}
	if limited < 10 {
		t.Fatalf("%d rate_limited errors before the close, want 10", limited)
	}
	if n := metric(t, e.srv.URL(), `ripple_policy_closes_total{reason="rate_limited"}`); n != 1 {
		t.Fatalf("rate-limit closes counted %v, want 1", n)
	}
}

func TestConnectionsPerIP(t *testing.T) {
	t.Parallel()
	e := secure(t, func(c *config.Config) { c.MaxConnsPerIP = 2 })
	token := hs256(t, claims("org-a"))
	first := authed(t, e, token)
	authed(t, e, token)
	resp, err := http.Get(e.srv.URL() + "/ws")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), "RIPPLE_MAX_CONNS_PER_IP") {
		t.Fatalf("third connection: HTTP %d %s, want 429 naming the setting", resp.StatusCode, body)
	}
	first.conn.WriteClose(1000, nil)
	first.waitClose()
	waitFor(t, "a free slot", func() bool { return metric(t, e.srv.URL(), "ripple_connections") == 1 })
	authed(t, e, token)
	if n := metric(t, e.srv.URL(), `ripple_refused_connections_total{reason="per_ip"}`); n != 1 {
		t.Fatalf("per-IP refusals counted %v, want 1", n)
	}
}

func TestStartNeedsAKeyForJWT(t *testing.T) {
	t.Parallel()
	cfg := config.Config{DatabaseURL: "postgres://127.0.0.1:1/none", DatabaseURLDirect: "postgres://127.0.0.1:1/none",
		Addr: "127.0.0.1:0", Auth: "jwt", PoolSize: 1}
	_, err := server.Start(context.Background(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "RIPPLE_JWT_SECRET") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("start with jwt and no key: %v, want one line naming the key settings", err)
	}
	cfg.Auth, cfg.RulesFile = "none", "rules.json"
	if _, err = server.Start(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "RIPPLE_RULES") {
		t.Fatalf("start with rules and no auth: %v", err)
	}
}

// rsaJWKS returns a JSON Web Key Set holding the public key of k under kid.
func rsaJWKS(kid string, k *rsa.PrivateKey) []byte {
	b64 := base64.RawURLEncoding.EncodeToString
	b, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
		"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}}})
	return b
}

func rs256(t *testing.T, kid string, k *rsa.PrivateKey) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims("org-a"))
	tok.Header["kid"] = kid
	s, err := tok.SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestKeyRotationWithoutRestart(t *testing.T) {
	t.Parallel()
	oldKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	newKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("JWKS file", func(t *testing.T) {
		t.Parallel()
		file := filepath.Join(t.TempDir(), "jwks.json")
		if err := os.WriteFile(file, rsaJWKS("k1", oldKey), 0o600); err != nil {
			t.Fatal(err)
		}
		e := secure(t, func(c *config.Config) { c.JWTSecret, c.JWKSFile = "", file })
		authed(t, e, rs256(t, "k1", oldKey))
		tmp := file + ".new"
		if err := os.WriteFile(tmp, rsaJWKS("k2", newKey), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
		authed(t, e, rs256(t, "k2", newKey)).subscribe("s", "items", nil)
	})
	t.Run("JWKS URL", func(t *testing.T) {
		t.Parallel()
		var served atomic.Pointer[[]byte]
		first := rsaJWKS("k1", oldKey)
		served.Store(&first)
		idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write(*served.Load())
		}))
		t.Cleanup(idp.Close)
		e := secure(t, func(c *config.Config) { c.JWTSecret, c.JWKSURL = "", idp.URL+"/.well-known/jwks.json" })
		authed(t, e, rs256(t, "k1", oldKey))
		rotated := rsaJWKS("k2", newKey)
		served.Store(&rotated)
		authed(t, e, rs256(t, "k2", newKey)).subscribe("s", "items", nil)
		// An HS256 token is refused: with only a JWKS configured, HS256 is not an allowed alg.
		c := dial(t, e.url, protocol.Subprotocol)
		c.send(protocol.AuthMessage{Type: "auth", Token: hs256(t, claims("org-a"))})
		expectRefused(t, c, protocol.ErrUnauthorized, protocol.CloseUnauthorized)
	})
}
