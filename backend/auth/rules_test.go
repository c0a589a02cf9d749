package auth

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ripple-rt/ripple/backend/protocol"
)

const exampleRules = `{
  "channels": {
    "projects": {
      "allow": [{"claim": "role", "in": ["member", "admin"]}],
      "scope": [{"column": "organization_id", "claim": "org_id"}],
      "omit": ["api_key"]
    },
    "audit": {"allow": [{"claim": "app_metadata.admin", "equals": true}]},
    "*": {"scope": [{"column": "owner_id", "claim": "sub"}]}
  }
}`

// claimsJSON decodes claims the way the Verifier does (numbers as json.Number).
func claimsJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAuthorize(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "rules.json")
	if err := os.WriteFile(path, []byte(exampleRules), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := LoadRules(path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, channel, claims string
		wantScope             string // JSON of the scope, or "" when forbidden
	}{
		{"member of one org", "projects", `{"sub":"u","role":"member","org_id":"org-1"}`, `[{"column":"organization_id","op":"eq","value":"org-1"}]`},
		{"member of several orgs", "projects", `{"role":["x","admin"],"org_id":["a","b"]}`, `[{"column":"organization_id","op":"in","value":["a","b"]}]`},
		{"numeric org", "projects", `{"role":"member","org_id":42}`, `[{"column":"organization_id","op":"eq","value":42}]`},
		{"role not allowed", "projects", `{"role":"guest","org_id":"org-1"}`, ""},
		{"no role", "projects", `{"org_id":"org-1"}`, ""},
		{"no org claim", "projects", `{"role":"member"}`, ""},
		{"empty org claim", "projects", `{"role":"member","org_id":""}`, ""},
		{"nested claim", "audit", `{"app_metadata":{"admin":true}}`, `[]`},
		{"nested claim false", "audit", `{"app_metadata":{"admin":false}}`, ""},
		{"default rule", "notes", `{"sub":"u7"}`, `[{"column":"owner_id","op":"eq","value":"u7"}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g, err := r.Authorize(tt.channel, claimsJSON(t, tt.claims))
			if tt.wantScope == "" {
				if err == nil {
					t.Fatalf("granted %+v, want forbidden", g)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(g.Scope)
			if string(got) != tt.wantScope {
				t.Fatalf("scope %s, want %s", got, tt.wantScope)
			}
		})
	}
}

func TestNoDefaultRuleForbidsOtherChannels(t *testing.T) {
	t.Parallel()
	r, err := ParseRules([]byte(`{"channels":{"projects":{}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Authorize("secrets", map[string]any{"sub": "u"}); err == nil || r.Covers("secrets") {
		t.Fatal("a channel without a rule was allowed")
	}
	if !r.Covers("projects") {
		t.Fatal("a channel with a rule is not covered")
	}
	g, err := r.Authorize("projects", map[string]any{"sub": "u"})
	if err != nil || len(g.Scope) != 0 || g.View == nil {
		t.Fatalf("open rule: %+v, %v", g, err)
	}
}

func TestNilRulesAllowEverything(t *testing.T) {
	t.Parallel()
	var r *Rules
	g, err := r.Authorize("anything", nil)
	if err != nil || g.Scope != nil || g.View != nil {
		t.Fatalf("nil rules: %+v, %v", g, err)
	}
}

func TestGrantSame(t *testing.T) {
	t.Parallel()
	r, err := ParseRules([]byte(exampleRules))
	if err != nil {
		t.Fatal(err)
	}
	grant := func(claims string) *Grant {
		g, err := r.Authorize("projects", claimsJSON(t, claims))
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	a := grant(`{"role":"member","org_id":"a","exp":1}`)
	if !a.Same(grant(`{"role":"admin","org_id":"a","exp":2}`)) {
		t.Error("a refreshed token with the same org changes the grant")
	}
	if a.Same(grant(`{"role":"member","org_id":"b"}`)) {
		t.Error("another org gives the same grant")
	}
}

func TestParseRulesErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ rules, want string }{
		{`{"channels":{"p":{"omitt":["x"]}}}`, "unknown field"},
		{`{}`, "no \"channels\""},
		{`{"channels":{"p":{"scope":[{"column":"org"}]}}}`, "column and a claim"},
		{`{"channels":{"p":{"allow":[{"equals":1}]}}}`, "no claim"},
		{`{"channels":{"p":{"allow":[{"claim":"r","equals":1,"in":[1]}]}}}`, "both"},
		{`{"channels":{"p":{"omit":["id"]}}}`, "key column"},
		{`[`, "not a rules file"},
	} {
		if _, err := ParseRules([]byte(tt.rules)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error about %q", tt.rules, err, tt.want)
		}
	}
}

func TestScopeValuesAreFilterValues(t *testing.T) {
	t.Parallel()
	r, err := ParseRules([]byte(exampleRules))
	if err != nil {
		t.Fatal(err)
	}
	g, err := r.Authorize("projects", claimsJSON(t, `{"role":"member","org_id":"o"}`))
	if err != nil {
		t.Fatal(err)
	}
	if g.Scope[0].Op != protocol.FilterEq || g.Scope[0].Value != "o" {
		t.Fatalf("scope %+v", g.Scope)
	}
}

func jsonNumberDecode(raw []byte, v any) error {
	d := json.NewDecoder(strings.NewReader(string(raw)))
	d.UseNumber()
	return d.Decode(v)
}
