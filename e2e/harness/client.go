package harness

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ripple-rt/ripple/backend/protocol"
	"github.com/ripple-rt/ripple/e2e/jshost"
)

//go:embed client.js
var clientJS string

// waitTimeout bounds every wait a test makes on a client.
const waitTimeout = 20 * time.Second

// BundlePath returns the client bundle the clients run:
// RIPPLE_E2E_BUNDLE, or client-ts/dist/ripple-bundle.js in this repository
// (built by `cd client-ts && npm ci && npm run build:bundle`).
func BundlePath() string {
	if v := os.Getenv("RIPPLE_E2E_BUNDLE"); v != "" {
		return v
	}
	return filepath.Join(clientTSDir(), "dist", "ripple-bundle.js")
}

// clientTSDir returns this repository's client-ts folder.
func clientTSDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "client-ts")
}

var bundle = sync.OnceValues(func() (string, error) {
	b, err := os.ReadFile(BundlePath())
	if err != nil {
		return "", fmt.Errorf("read the client bundle (build it with `cd client-ts && npm ci && npm run build:bundle`): %w", err)
	}
	return string(b), nil
})

// Engine runs a client's JavaScript: QuickJS under jshost, or Node.
type Engine interface {
	// Await evaluates the JavaScript expression expr, waits for the promise
	// it yields and decodes the resolved value's JSON into out (may be nil).
	Await(ctx context.Context, expr string, out any) error
}

// Client is one browser-like client: a QueryClient and a RealtimeClient
// from the bundle, driven through client.js's `harness` object.
type Client struct {
	t      testing.TB
	engine Engine
	host   *jshost.Host // nil unless the engine is QuickJS
}

// ClientOptions tune a client's RealtimeClient.
type ClientOptions struct {
	// BackoffMs is the cap of the first reconnect delay. Default 200.
	BackoffMs int
	// Random, when set, replaces Math.random for the backoff jitter
	// (a fixed value makes the delay predictable).
	Random *float64
}

// WatchSpec sets up one query in a client: what the query reads and which
// channel patches it.
type WatchSpec struct {
	// Channel is the channel bindQuery subscribes to.
	Channel string `json:"channel"`
	// Table is the table the query function reads (via SelectRows).
	Table string `json:"table"`
	// Filter applies to both the subscription and the query.
	Filter *protocol.Filter `json:"filter,omitempty"`
	// NoFetch leaves the query unfetched (no observer).
	NoFetch bool `json:"-"`
	// NoBind leaves the query unbound: no change patches it.
	NoBind bool `json:"-"`
}

// State is a snapshot of one watched query and its client.
type State struct {
	Data        json.RawMessage  `json:"data"`
	FetchStatus string           `json:"fetchStatus"`
	Fetches     int              `json:"fetches"`
	Changes     int              `json:"changes"`
	Resyncs     []string         `json:"resyncs"`
	Acks        []SubscribedInfo `json:"acks"`
	Status      string           `json:"status"`
	Errors      []string         `json:"errors"`
}

// SubscribedInfo is one `subscribed` ack as the client reported it.
type SubscribedInfo struct {
	Epoch   string `json:"epoch"`
	Seq     uint64 `json:"seq"`
	Resumed bool   `json:"resumed"`
}

// NewClient starts a QuickJS runtime running the bundle, connected to the
// gateway at wsURL; its query functions read from db.
func NewClient(t testing.TB, wsURL string, db Querier, opts ClientOptions) *Client {
	t.Helper()
	src, err := bundle()
	if err != nil {
		t.Fatal(err)
	}
	h := jshost.New(t, jshost.Options{})
	if err := h.SetAsyncFunc("selectRows", selectRowsFunc(db)); err != nil {
		t.Fatal(err)
	}
	if err := h.Eval("ripple-bundle.js", src); err != nil {
		t.Fatal(err)
	}
	if err := h.Eval("client.js", clientJS); err != nil {
		t.Fatal(err)
	}
	c := &Client{t: t, engine: h, host: h}
	c.start(wsURL, opts)
	return c
}

// selectRowsFunc serves the JavaScript selectRows(table, filter) calls.
func selectRowsFunc(db Querier) jshost.AsyncFunc {
	return func(ctx context.Context, args []json.RawMessage) (any, error) {
		var table string
		var filter *protocol.Filter
		if len(args) != 2 {
			return nil, fmt.Errorf("want 2 arguments, got %d", len(args))
		}
		if err := json.Unmarshal(args[0], &table); err != nil {
			return nil, fmt.Errorf("table: %w", err)
		}
		if err := json.Unmarshal(args[1], &filter); err != nil {
			return nil, fmt.Errorf("filter: %w", err)
		}
		return SelectRows(ctx, db, table, filter)
	}
}

func (c *Client) start(wsURL string, opts ClientOptions) {
	c.t.Helper()
	start := map[string]any{"url": wsURL, "backoffMs": opts.BackoffMs, "token": token("e2e-client")}
	if opts.Random != nil {
		start["random"] = *opts.Random
	}
	c.call("harness.start(%s)", start)
}

// Host returns the client's QuickJS host, or nil for a Node client.
func (c *Client) Host() *jshost.Host { return c.host }

// Watch sets up the query name as spec says.
func (c *Client) Watch(name string, spec WatchSpec) {
	c.t.Helper()
	b, err := json.Marshal(spec)
	if err != nil {
		c.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatal(err)
	}
	m["fetch"], m["bind"] = !spec.NoFetch, !spec.NoBind
	c.call("harness.watch(%s, %s)", name, m)
}

// WaitReady waits until the query name is subscribed and, if fetched, its
// first fetch is in.
func (c *Client) WaitReady(name string, fetched bool) {
	c.t.Helper()
	c.call("harness.waitReady(%s, %s, %s)", name, fetched, waitTimeout.Milliseconds())
}

// WaitData waits until the query name's cached data equals rows (a JSON
// array of row objects; order and key order do not matter).
func (c *Client) WaitData(name string, rows json.RawMessage) {
	c.t.Helper()
	c.call("harness.waitData(%s, %s, %s)", name, rows, waitTimeout.Milliseconds())
}

// WaitCount waits until the query name's counter ("fetches", "changes",
// "resyncs" or "acks") reaches n.
func (c *Client) WaitCount(name, counter string, n int) {
	c.t.Helper()
	c.call("harness.waitCount(%s, %s, %s, %s)", name, counter, n, waitTimeout.Milliseconds())
}

// WaitStatus waits until the connection status is one of statuses.
func (c *Client) WaitStatus(statuses ...string) {
	c.t.Helper()
	c.call("harness.waitStatus(%s, %s)", statuses, waitTimeout.Milliseconds())
}

// State returns a snapshot of the query name.
func (c *Client) State(name string) State {
	c.t.Helper()
	var s State
	c.callInto(&s, "harness.state(%s)", name)
	return s
}

// call runs a harness method; format's %s verbs take JSON-encoded args.
func (c *Client) call(format string, args ...any) {
	c.t.Helper()
	c.callInto(nil, format, args...)
}

func (c *Client) callInto(out any, format string, args ...any) {
	c.t.Helper()
	enc := make([]any, len(args))
	for i, a := range args {
		if raw, ok := a.(json.RawMessage); ok {
			enc[i] = string(raw)
			continue
		}
		b, err := json.Marshal(a)
		if err != nil {
			c.t.Fatal(err)
		}
		enc[i] = string(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout+5*time.Second)
	defer cancel()
	if err := c.engine.Await(ctx, fmt.Sprintf(format, enc...), out); err != nil {
		c.t.Fatal(err)
	}
}
