package main

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestTailAuthenticatesWithToken(t *testing.T) {
	t.Parallel()
	const secret = "tail-test-secret-that-is-long-enough"
	pg, db := itemsDatabase(t)
	ctx := context.Background()
	gw, wsURL := serve(t, pg.URL, "RIPPLE_AUTH=jwt", "RIPPLE_JWT_SECRET="+secret)

	anonymous := startProc(t, []string{"RIPPLE_TOKEN="}, "tail", "--url", wsURL, "items")
	waitLine(t, anonymous.stderr, regexp.MustCompile(`unauthorized`))

	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "tester", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	tail := startProc(t, []string{"RIPPLE_TOKEN=" + token}, "tail", "--url", wsURL, "items")
	waitLine(t, tail.stderr, regexp.MustCompile(`subscribed to items`))
	if _, err := db.Exec(ctx, `INSERT INTO items VALUES (1, 'authenticated')`); err != nil {
		t.Fatal(err)
	}
	waitLine(t, tail.stdout, regexp.MustCompile(`"channel":"items","seq":1,.*"authenticated"`))
	tail.stop(t)
	anonymous.stop(t)
	gw.stop(t)
}
