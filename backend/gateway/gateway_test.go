package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ripple-rt/ripple/backend/auth"
	"github.com/ripple-rt/ripple/backend/protocol"
)

func TestChangesReachSubscribers(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 0, nil)
	a, other := dialV1(t, s.url), dialV1(t, s.url)
	ack := a.subscribe("a", "projects", "")
	if ack.Epoch != s.hub.Epoch() || ack.Seq != 0 {
		t.Errorf("ack %+v, want epoch %s seq 0", ack, s.hub.Epoch())
	}
	other.subscribe("o", "jobs", "")

	s.publish(t, "projects", `{"op":"INSERT","table":"projects","schema":"public","new":{"id":1,"name":"a"}}`)
	s.publish(t, "projects", `{"op":"UPDATE","table":"projects","schema":"public","new":{"id":1,"name":"b"},"old":{"id":1,"name":"a"}}`)
	s.publish(t, "projects", `{"op":"DELETE","table":"projects","schema":"public","old":{"id":1,"name":"b"}}`)
	s.publish(t, "jobs", `{"op":"INSERT","table":"jobs","new":{"id":9}}`)

	for i, op := range []protocol.Op{protocol.OpInsert, protocol.OpUpdate, protocol.OpDelete} {
		m := a.expect("change")
		if m.Sub != "a" || m.Seq != uint64(i+1) || m.Change.Op != op || m.Change.Table != "projects" {
			t.Errorf("change %d = %+v, want sub a seq %d op %s", i, m, i+1, op)
		}
	}
	if m := other.expect("change"); m.Seq != 1 || m.Change.Table != "jobs" {
		t.Errorf("subscriber of jobs got %+v first, want the jobs change", m)
	}
	a.sync("after")
}

func TestFilteredSubscription(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 0, nil)
	c := dialV1(t, s.url)
	c.subscribe("p7", "jobs", `,"filter":{"column":"project_id","op":"eq","value":7}`)

	s.publish(t, "jobs", `{"op":"INSERT","table":"jobs","new":{"id":1,"project_id":8}}`)
	s.publish(t, "jobs", `{"op":"INSERT","table":"jobs","new":{"id":2,"project_id":7}}`)
	s.publish(t, "jobs", `{"op":"UPDATE","table":"jobs","new":{"id":2,"project_id":8,"n":1},"old":{"id":2,"project_id":7}}`)
	s.publish(t, "jobs", `{"op":"UPDATE","table":"jobs","new":{"id":1,"project_id":7},"old":{"id":1,"project_id":8}}`)
	s.publish(t, "jobs", `{"op":"DELETE","table":"jobs","old":{"id":3,"project_id":8}}`)
	s.publish(t, "jobs", `{"op":"DELETE","table":"jobs","old":{"id":1,"project_id":7}}`)

	want := []struct {
		seq uint64
		op  protocol.Op
		id  json.Number
	}{
		{2, protocol.OpInsert, "2"},
		{3, protocol.OpDelete, "2"}, // moved out: a DELETE carrying the previous row in old
		{4, protocol.OpInsert, "1"}, // moved in: an INSERT
		{6, protocol.OpDelete, "1"}, // matched on old
	}
	for _, w := range want {
		m := c.expect("change")
		row := m.Change.New
		if m.Change.Op == protocol.OpDelete {
			row = m.Change.Old
		}
		if m.Seq != w.seq || m.Change.Op != w.op || fmt.Sprint(row["id"]) != string(w.id) {
			t.Errorf("got seq %d %s %v, want seq %d %s id %s", m.Seq, m.Change.Op, row, w.seq, w.op, w.id)
		}
		if w.seq == 3 && fmt.Sprint(m.Change.Old["project_id"]) != "7" {
			t.Errorf("moved-out DELETE old = %v, want the previous project_id 7", m.Change.Old)
		}
	}
	c.sync("end")
}

func TestResume(t *testing.T) {
	t.Parallel()
	const ring = 4
	tests := []struct {
		name   string
		epoch  string // "" = the hub's
		from   uint64
		gap    bool // a gap after the third change
		filter string
		want   []uint64              // replayed seqs
		resync protocol.ResyncReason // or a resync
	}{
		{name: "replay in order", from: 3, want: []uint64{4, 5, 6}},
		{name: "filtered replay", from: 2, filter: `,"filter":{"column":"id","op":"in","value":[4,6]}`, want: []uint64{4, 6}},
		{name: "up to date", from: 6},
		{name: "across a gap", from: 2, gap: true, resync: protocol.ResyncGap},
		{name: "after a gap", from: 4, gap: true, want: []uint64{5, 6}},
		{name: "foreign epoch", epoch: "0000", from: 5, resync: protocol.ResyncEpoch},
		{name: "too old", from: 1, resync: protocol.ResyncTooOld},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newTestServer(t, ring, nil)
			for i := 1; i <= 6; i++ {
				s.publish(t, "projects", fmt.Sprintf(`{"op":"INSERT","table":"projects","new":{"id":%d}}`, i))
				if tt.gap && i == 3 {
					s.hub.Gap("projects")
				}
			}
			epoch := tt.epoch
			if epoch == "" {
				epoch = s.hub.Epoch()
			}
			c := dialV1(t, s.url)
			ack := c.subscribe("r", "projects", fmt.Sprintf(`%s,"resume":{"epoch":%q,"seq":%d}`, tt.filter, epoch, tt.from))
			if ack.Seq != 6 {
				t.Errorf("ack seq %d, want 6", ack.Seq)
			}
			if tt.resync != "" {
				if m := c.expect("resync"); m.Reason != tt.resync || m.Sub != "r" {
					t.Errorf("got %+v, want resync %s", m, tt.resync)
				}
			}
			for _, seq := range tt.want {
				if m := c.expect("change"); m.Seq != seq {
					t.Errorf("replayed seq %d, want %d", m.Seq, seq)
				}
			}
			s.publish(t, "projects", `{"op":"INSERT","table":"projects","new":{"id":6}}`)
			if m := c.expect("change"); m.Seq != 7 {
				t.Errorf("live change seq %d after the replay, want 7", m.Seq)
			}
		})
	}
}

func TestGapResyncsLiveSubscriptions(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 0, nil)
	c := dialV1(t, s.url)
	c.subscribe("a", "projects", "")
	c.subscribe("b", "jobs", "")
	s.hub.Gap("projects")
	if m := c.expect("resync"); m.Sub != "a" || m.Reason != protocol.ResyncGap {
		t.Errorf("got %+v, want resync listener_gap for a", m)
	}
	c.sync("only-a")
	if got := gauge(s.metrics.Resyncs.WithLabelValues(string(protocol.ResyncGap))); got != 1 {
		t.Errorf("resyncs{listener_gap} = %v, want 1", got)
	}
}

func TestSeedProtocol(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 0, nil)
	c := dial(t, s.url, "", false)
	c.send(`{"type":"subscribe","channel":"projects"}`)
	waitFor(t, "the seed subscription", func() bool { return gauge(s.metrics.Subscriptions) == 1 })

	payloads := []string{
		`{"op":"INSERT","table":"projects","new":{"id":1}}`,
		`{"op":"UPDATE","table":"projects","new":{"id":1,"name":"x"}}`,
		`{"op":"DELETE","table":"projects","old":{"id":1}}`,
	}
	s.publish(t, "jobs", `{"op":"INSERT","table":"jobs","new":{"id":1}}`)
	for _, p := range payloads {
		s.publish(t, "projects", p)
	}
	for _, want := range payloads {
		if got := string(c.frame()); got != want {
			t.Errorf("seed client got frame %s, want the bare payload %s", got, want)
		}
	}
	c.send(`{"type":"unsubscribe","channel":"projects"}`)
	waitFor(t, "the seed unsubscribe", func() bool { return gauge(s.metrics.Subscriptions) == 0 })
}

func TestErrors(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 0, func(o *Options) { o.MaxSubscriptions = 2 })
	c := dialV1(t, s.url)
	c.subscribe("taken", "projects", "")
	tests := []struct {
		name string
		send string
		code protocol.ErrorCode
		sub  string
	}{
		{"malformed JSON", `{"type":`, protocol.ErrBadMessage, ""},
		{"no type", `{"sub":"x"}`, protocol.ErrBadMessage, ""},
		{"unknown type", `{"type":"publish"}`, protocol.ErrUnknownType, ""},
		{"unknown channel", `{"type":"subscribe","sub":"x","channel":"secrets"}`, protocol.ErrUnknownChannel, "x"},
		{"bad filter op", `{"type":"subscribe","sub":"x","channel":"projects","filter":{"column":"id","op":"like","value":1}}`, protocol.ErrBadFilter, "x"},
		{"bad filter value", `{"type":"subscribe","sub":"x","channel":"projects","filter":{"column":"id","op":"in","value":1}}`, protocol.ErrBadFilter, "x"},
		{"duplicate sub", `{"type":"subscribe","sub":"taken","channel":"jobs"}`, protocol.ErrDuplicateSub, "taken"},
		{"unknown sub", `{"type":"unsubscribe","sub":"nope"}`, protocol.ErrUnknownSub, "nope"},
	}
	for _, tt := range tests {
		c.send(tt.send)
		m := c.expect("error")
		if m.Code != tt.code || m.Sub != tt.sub || m.Message == "" {
			t.Errorf("%s: got %+v, want code %s sub %q and a message", tt.name, m, tt.code, tt.sub)
		}
		c.sync(tt.name) // the connection is still usable
	}

	c.subscribe("second", "jobs", "")
	c.send(`{"type":"subscribe","sub":"third","channel":"jobs"}`)
	if m := c.expect("error"); m.Code != protocol.ErrTooManySubscriptions || m.Sub != "third" {
		t.Errorf("got %+v, want too_many_subscriptions", m)
	}
	c.send(`{"type":"unsubscribe","sub":"second"}`)
	if m := c.expect("unsubscribed"); m.Sub != "second" {
		t.Errorf("got %+v, want unsubscribed second", m)
	}
	c.subscribe("third", "jobs", "") // room again
	c.send(`{"type":"auth","token":"anything"}`)
	c.sync("after-auth")
	if got := gauge(s.metrics.Errors.WithLabelValues(string(protocol.ErrBadMessage))); got != 2 {
		t.Errorf("errors{bad_message} = %v, want 2", got)
	}
}

func TestUnsubscribeStopsChanges(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 0, nil)
	c := dialV1(t, s.url)
	c.subscribe("a", "projects", "")
	c.send(`{"type":"unsubscribe","sub":"a"}`)
	c.expect("unsubscribed")
	s.publish(t, "projects", `{"op":"INSERT","table":"projects","new":{"id":1}}`)
	c.sync("nothing-before-me")
	if got := gauge(s.metrics.Subscriptions); got != 0 {
		t.Errorf("subscriptions gauge = %v, want 0", got)
	}
}

func TestMessageTooLarge(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 0, func(o *Options) { o.MaxMessageSize = 1024 })
	c := dialV1(t, s.url)
	c.send(`{"type":"ping","ref":"` + strings.Repeat("x", 1024) + `"}`)
	if m := c.expect("error"); m.Code != protocol.ErrMessageTooLarge {
		t.Errorf("got %+v, want message_too_large", m)
	}
	if code, reason := c.closeCode(); code != protocol.ClosePolicy || reason == "" {
		t.Errorf("closed with %d %q, want %d and a reason", code, reason, protocol.ClosePolicy)
	}
}

func TestDefaultMessageSizeLimit(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 0, nil)
	c := dialV1(t, s.url)
	c.send(`{"type":"ping","ref":"` + strings.Repeat("x", DefaultMaxMessageSize) + `"}`)
	if m := c.expect("error"); m.Code != protocol.ErrMessageTooLarge {
		t.Errorf("got %+v, want message_too_large", m)
	}
	if code, _ := c.closeCode(); code != protocol.ClosePolicy {
		t.Errorf("closed with %d, want %d", code, protocol.ClosePolicy)
	}
}

func TestBatchesQueuedMessagesIntoOneFrame(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 0, nil)
	c := dialV1(t, s.url)
	c.subscribe("a", "projects", "")
	var sc *conn
	s.srv.mu.Lock()
	for k := range s.srv.conns {
		sc = k
	}
	s.srv.mu.Unlock()
	// Hold the connection's task queue so that the changes pile up.
	release := make(chan struct{})
	sc.async(func() { <-release })
	for i := 1; i <= 5; i++ {
		s.publish(t, "projects", fmt.Sprintf(`{"op":"INSERT","table":"projects","new":{"id":%d}}`, i))
	}
	close(release)
	frame := strings.Split(string(c.frame()), "\n")
	if len(frame) != 5 {
		t.Fatalf("frame holds %d messages, want 5: %q", len(frame), frame)
	}
	for i, raw := range frame {
		var m serverMsg
		if err := json.Unmarshal([]byte(raw), &m); err != nil || m.Seq != uint64(i+1) {
			t.Errorf("message %d of the frame: %s (%v), want seq %d", i, raw, err, i+1)
		}
	}
}

func TestOriginAllowlist(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 0, func(o *Options) { o.AllowedOrigins = []string{"https://app.example.com/"} })
	tests := []struct {
		origin string
		status int
	}{
		{"https://evil.example.com", http.StatusForbidden},
		{"https://APP.example.com", http.StatusSwitchingProtocols},
		{"", http.StatusSwitchingProtocols},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(http.MethodGet, s.http.URL+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		if tt.origin != "" {
			req.Header.Set("Origin", tt.origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body []byte
		if resp.StatusCode != http.StatusSwitchingProtocols {
			body, _ = io.ReadAll(resp.Body)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("origin %q: status %d, want %d", tt.origin, resp.StatusCode, tt.status)
		}
		if tt.status == http.StatusForbidden && !strings.Contains(string(body), "not allowed") {
			t.Errorf("origin %q: body %q does not say why", tt.origin, body)
		}
	}
}

func TestUnknownSubprotocolRefused(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 0, nil)
	req, err := http.NewRequest(http.MethodGet, s.http.URL+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Sec-WebSocket-Protocol", "mqtt, wamp")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	t.Parallel()
	var ready atomic.Bool
	s := newTestServer(t, 0, func(o *Options) {
		o.Ready = ready.Load
		o.MetricsHandler = promhttp.Handler()
	})
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(s.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d", code)
	}
	if code, _ := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before ready = %d, want 503", code)
	}
	ready.Store(true)
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz when ready = %d, want 200", code)
	}
	if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics = %d, not the handler given", code)
	}
}

func TestShutdownSendsGoingAway(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 0, nil)
	v1, seed := dialV1(t, s.url), dial(t, s.url, "", false)
	v1.subscribe("a", "projects", "")
	waitFor(t, "both connections", func() bool { return gauge(s.metrics.Connections) == 2 })

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for _, c := range []*client{v1, seed} {
		if code, _ := c.closeCode(); code != protocol.CloseGoingAway {
			t.Errorf("closed with %d, want 1001", code)
		}
	}
	if got := gauge(s.metrics.Connections); got != 0 {
		t.Errorf("connections gauge = %v after shutdown", got)
	}
	resp, err := http.Get(s.http.URL + "/ws")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a new /ws request after shutdown got %d, want 503", resp.StatusCode)
	}
}

func TestShutdownBoundedByContext(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 0, func(o *Options) { o.SendQueueSize = 4 })
	c := dial(t, s.url, protocol.Subprotocol, true) // never reads
	c.send(`{"type":"subscribe","sub":"a","channel":"projects"}`)
	waitFor(t, "the subscription", func() bool { return gauge(s.metrics.Subscriptions) == 1 })
	stallWriter(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err == nil {
		t.Fatal("shutdown returned nil although the client never closed")
	}
	waitFor(t, "the connection to be cut", func() bool { return gauge(s.metrics.Connections) == 0 })
}

func TestHeartbeat(t *testing.T) {
	t.Parallel()
	// Long enough that a loaded machine running -race still answers within one interval.
	s := newTestServer(t, 0, func(o *Options) { o.PingInterval = 250 * time.Millisecond })
	alive := dialV1(t, s.url)
	dead := dialV1(t, s.url)
	dead.ignorePings.Store(true)
	if code, _ := dead.closeCode(); code != 0 {
		t.Errorf("silent client closed with code %d, want a cut connection", code)
	}
	waitFor(t, "several pings", func() bool { return alive.pings.Load() >= 4 })
	alive.sync("still-here")
}

func TestInvalidOptions(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 0, nil)
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no hub", Options{Channels: []string{"a"}}, "Hub"},
		{"no channels", Options{Hub: s.hub}, "Channels"},
		{"bad origin", Options{Hub: s.hub, Channels: []string{"a"}, AllowedOrigins: []string{"example.com"}}, "AllowedOrigins"},
		{"negative queue", Options{Hub: s.hub, Channels: []string{"a"}, SendQueueSize: -1}, "SendQueueSize"},
		{"negative ping", Options{Hub: s.hub, Channels: []string{"a"}, PingInterval: -time.Second}, "PingInterval"},
	}
	for _, tt := range tests {
		if _, err := New(tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New error %v, want one naming %s", tt.name, err, tt.want)
		}
	}
}

// TestFilterOnOmittedColumnRefused: a filter on a column the rule omits
// would tell the client, by which changes arrive, what the column holds;
// it is refused with forbidden.
func TestFilterOnOmittedColumnRefused(t *testing.T) {
	t.Parallel()
	const secret = "omitted-column-test-secret-32-bytes"
	rules, err := auth.ParseRules([]byte(`{"channels":{"projects":{"scope":[{"column":"org","claim":"org_id"}],"omit":["api_key"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := auth.New(context.Background(), auth.Options{Secret: []byte(secret)})
	if err != nil {
		t.Fatal(err)
	}
	s := newTestServer(t, 0, func(o *Options) { o.Verifier, o.Rules = verifier, rules })
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"org_id": "a", "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	c := dialV1(t, s.url)
	c.send(`{"type":"auth","token":"` + token + `"}`)
	c.sync("authed")
	for _, op := range []string{`"op":"eq","value":"k1"`, `"op":"neq","value":"k1"`, `"op":"in","value":["k1"]`} {
		c.send(`{"type":"subscribe","sub":"probe","channel":"projects","filter":{"column":"api_key",` + op + `}}`)
		if m := c.expect("error"); m.Code != protocol.ErrForbidden || m.Sub != "probe" {
			t.Errorf("filter {%s} on an omitted column: got %+v, want forbidden", op, m)
		}
	}
	c.subscribe("name", "projects", `,"filter":{"column":"name","op":"eq","value":"x"}`) // other columns may be filtered on
}
