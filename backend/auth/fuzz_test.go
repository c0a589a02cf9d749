package auth

import "testing"

// FuzzParseJWKS feeds key sets as a key server might serve them: parsing
// never panics, and every key it keeps is usable for its alg.
func FuzzParseJWKS(f *testing.F) {
	f.Add(jwks(rsaJWK("r", rsaKey1), ecJWK("e", ecKey1)))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"},{"kty":"oct","k":"x"}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		keys, err := parseJWKS(raw)
		if err != nil {
			return
		}
		for kid, k := range keys {
			if k.key == nil || (k.alg != "RS256" && k.alg != "ES256") {
				t.Fatalf("key %q kept without a usable key: %+v", kid, k)
			}
		}
	})
}

// FuzzParseRules checks that a rules file either fails to parse or yields
// rules whose decisions never panic.
func FuzzParseRules(f *testing.F) {
	f.Add([]byte(exampleRules), []byte(`{"role":"member","org_id":"o"}`))
	f.Add([]byte(`{"channels":{"*":{"scope":[{"column":"a","claim":"x.y"}]}}}`), []byte(`{"x":{"y":[1,"2",null]}}`))
	f.Fuzz(func(t *testing.T, rules, claims []byte) {
		r, err := ParseRules(rules)
		if err != nil {
			return
		}
		var c map[string]any
		if err := jsonNumberDecode(claims, &c); err != nil {
			return
		}
		for _, ch := range []string{"projects", "audit", "x"} {
			_, _ = r.Authorize(ch, c)
		}
	})
}
