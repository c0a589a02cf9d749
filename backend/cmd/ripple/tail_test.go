package main

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"

	"github.com/ripple-rt/ripple/backend/pgtest"
	"github.com/ripple-rt/ripple/schema"
)

func TestTailAuthenticatesWithToken(t *testing.T) {
	t.Parallel()
	const secret = "tail-test-secret-that-is-long-enough"
	pg := pgtest.Cluster(t)
	ctx := context.Background()
	db, err := pgx.Connect(ctx, pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	if err := schema.Apply(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `CREATE TABLE notes (id bigint PRIMARY KEY, body text)`); err != nil {
		t.Fatal(err)
	}
	if err := schema.Enable(ctx, db, "notes"); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	serve := startProc(t, []string{"DATABASE_URL=" + pg.URL, "DATABASE_URL_DIRECT=", "PG_CHANNELS=", "RIPPLE_AUTH=jwt",
		"RIPPLE_JWT_SECRET=" + secret, "RIPPLE_ADDR=" + addr}, "serve")
	waitLine(t, serve.stderr, regexp.MustCompile(`gateway listening`))
	wsURL := "ws://" + addr + "/ws"

	anonymous := startProc(t, []string{"RIPPLE_TOKEN="}, "tail", "--url", wsURL, "notes")
	waitLine(t, anonymous.stderr, regexp.MustCompile(`unauthorized`))

	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "tester", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	tail := startProc(t, []string{"RIPPLE_TOKEN=" + token}, "tail", "--url", wsURL, "notes")
	waitLine(t, tail.stderr, regexp.MustCompile(`subscribed to notes`))
	if _, err := db.Exec(ctx, `INSERT INTO notes VALUES (1, 'authenticated')`); err != nil {
		t.Fatal(err)
	}
	waitLine(t, tail.stdout, regexp.MustCompile(`"channel":"notes","seq":1,.*"authenticated"`))
	tail.stop(t)
	anonymous.stop(t)
	serve.stop(t)
}
