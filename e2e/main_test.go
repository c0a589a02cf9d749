package e2e_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/ripple-rt/ripple/e2e/harness"
)

// pg is the Postgres container the scenarios share; each test makes its own
// database in it. Scenarios that stop Postgres start their own container.
var pg *harness.Postgres

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	if os.Getenv("RIPPLE_E2E") == "off" {
		fmt.Println("e2e: RIPPLE_E2E=off: the end-to-end tests are skipped")
		return 0
	}
	// Defaults that make testcontainers work where no registry is reachable
	// (no reaper image) and where it runs inside a container (it would dial
	// the bridge gateway). Tests remove their containers themselves.
	setDefault("TESTCONTAINERS_RYUK_DISABLED", "true")
	setDefault("TESTCONTAINERS_HOST_OVERRIDE", "localhost")

	if _, err := os.Stat(harness.BundlePath()); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: the client bundle is missing (%v).\n"+
			"Build it with `cd client-ts && npm ci && npm run build:bundle`, or set RIPPLE_E2E=off to skip the e2e tests.\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := harness.StartPostgres(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n"+
			"The e2e tests need a Docker engine (tools/docker/up.sh starts one) and the Postgres image %s;\n"+
			"without a registry, build the local one (tools/pgimage/build.sh) and set RIPPLE_E2E_POSTGRES_IMAGE=ripple/postgres:15-local.\n"+
			"Set RIPPLE_E2E=off to skip the e2e tests.\n", err, harness.Image())
		return 1
	}
	pg = p
	defer func() {
		if err := p.Terminate(context.Background()); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: terminate Postgres: %v\n", err)
		}
	}()
	return m.Run()
}

func setDefault(key, value string) {
	if os.Getenv(key) == "" {
		os.Setenv(key, value)
	}
}
