package jshost_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/ripple-rt/ripple/e2e/jshost"
)

func deadline(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustEval(t *testing.T, h *jshost.Host, src string) {
	t.Helper()
	if err := h.Eval(t.Name(), src); err != nil {
		t.Fatal(err)
	}
}

func mustWait(t *testing.T, h *jshost.Host, cond string) {
	t.Helper()
	if err := h.WaitUntil(deadline(t), cond); err != nil {
		t.Fatal(err)
	}
}

func readJSON[T any](t *testing.T, h *jshost.Host, expr string) T {
	t.Helper()
	var v T
	if err := h.JSON(expr, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestTimersFireInDeadlineOrder(t *testing.T) {
	t.Parallel()
	h := jshost.New(t, jshost.Options{})
	mustEval(t, h, `
		globalThis.log = [];
		setTimeout(() => log.push("200ms"), 200);
		setTimeout(() => log.push("0ms-a"), 0);
		const dropped = setTimeout(() => log.push("cleared"), 10);
		setTimeout((x, y) => log.push("0ms-b " + x + y), 0, "ar", "gs");
		setTimeout(() => log.push("100ms"), 100);
		clearTimeout(dropped);
	`)
	mustWait(t, h, `log.length === 4`)
	got := readJSON[[]string](t, h, "log")
	want := []string{"0ms-a", "0ms-b args", "100ms", "200ms"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("timer order = %q, want %q", got, want)
	}
	if n := readJSON[int](t, h, "__jshost_timer_count()"); n != 0 {
		t.Fatalf("%d timers still armed after all fired or were cleared", n)
	}
}

func TestIntervalRepeatsUntilCleared(t *testing.T) {
	t.Parallel()
	h := jshost.New(t, jshost.Options{})
	mustEval(t, h, `
		globalThis.ticks = 0;
		const iv = setInterval(() => { if (++ticks === 3) clearInterval(iv); }, 2);
		globalThis.done = false;
		setTimeout(function wait() { if (ticks < 3) setTimeout(wait, 2); else setTimeout(() => done = true, 10); }, 2);
	`)
	mustWait(t, h, `done`)
	if got := readJSON[int](t, h, "ticks"); got != 3 {
		t.Fatalf("interval ran %d times, want 3 (cleared inside its third run)", got)
	}
	if n := readJSON[int](t, h, "__jshost_timer_count()"); n != 0 {
		t.Fatalf("%d timers still armed", n)
	}
}

func TestMicrotasksDrainAfterEachCall(t *testing.T) {
	t.Parallel()
	h := jshost.New(t, jshost.Options{})
	mustEval(t, h, `
		globalThis.steps = [];
		Promise.resolve().then(() => steps.push(1)).then(() => steps.push(2));
		queueMicrotask(() => steps.push(3));
	`)
	// No waiting: the Eval itself must have run the promise callbacks.
	if got := readJSON[[]int](t, h, "steps"); len(got) != 3 {
		t.Fatalf("steps after Eval = %v, want three microtasks run", got)
	}
	mustEval(t, h, `setTimeout(() => Promise.resolve().then(() => steps.push("from timer")), 0)`)
	mustWait(t, h, `steps.length === 4`)
}

func TestAwait(t *testing.T) {
	t.Parallel()
	h := jshost.New(t, jshost.Options{})
	tests := []struct {
		name, expr string
		want       any
		wantErr    string
	}{
		{name: "value", expr: `42`, want: float64(42)},
		{name: "timer promise", expr: `new Promise((r) => setTimeout(() => r({ok: true}), 5))`, want: map[string]any{"ok": true}},
		{name: "undefined reads as null", expr: `Promise.resolve()`, want: nil},
		{name: "rejection", expr: `Promise.reject(new Error("boom"))`, wantErr: "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got any
			err := h.Await(deadline(t), tt.expr, &got)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWaitUntilHonoursContext(t *testing.T) {
	t.Parallel()
	h := jshost.New(t, jshost.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := h.WaitUntil(ctx, "false")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}

func TestHostFunctions(t *testing.T) {
	t.Parallel()
	h := jshost.New(t, jshost.Options{})
	if err := h.SetFunc("sum", func(args []json.RawMessage) (any, error) {
		total := 0.0
		for _, a := range args {
			var f float64
			if err := json.Unmarshal(a, &f); err != nil {
				return nil, err
			}
			total += f
		}
		return total, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := h.SetFunc("fail", func([]json.RawMessage) (any, error) { return nil, errors.New("no rows") }); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	if err := h.SetAsyncFunc("rows", func(ctx context.Context, args []json.RawMessage) (any, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return []map[string]any{{"id": 1, "table": string(args[0])}}, nil
	}); err != nil {
		t.Fatal(err)
	}

	if got := readJSON[float64](t, h, "sum(1, 2, 3.5)"); got != 6.5 {
		t.Fatalf("sum = %v, want 6.5", got)
	}
	if got := readJSON[string](t, h, `(() => { try { fail(); return "no throw" } catch (e) { return e.message } })()`); !strings.Contains(got, "no rows") {
		t.Fatalf("fail() error message = %q, want it to carry the Go error", got)
	}

	mustEval(t, h, `globalThis.settled = false; globalThis.p = rows("items").then((r) => { settled = true; return r; })`)
	if readJSON[bool](t, h, "settled") {
		t.Fatal("the async host function settled before Go returned")
	}
	close(release)
	var rows []struct {
		ID    int    `json:"id"`
		Table string `json:"table"`
	}
	if err := h.Await(deadline(t), "p", &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].ID != 1 || rows[0].Table != `"items"` {
		t.Fatalf("rows = %+v", rows)
	}
}

func TestAbortController(t *testing.T) {
	t.Parallel()
	h := jshost.New(t, jshost.Options{})
	mustEval(t, h, `
		const c = new AbortController();
		globalThis.events = [];
		c.signal.addEventListener("abort", () => events.push("listener"));
		c.signal.onabort = () => events.push("onabort");
		c.abort();
		c.abort();
		globalThis.aborted = c.signal.aborted;
		try { c.signal.throwIfAborted(); } catch (e) { globalThis.reason = String(e.message); }
	`)
	if got := readJSON[[]string](t, h, "events"); fmt.Sprint(got) != "[onabort listener]" {
		t.Fatalf("abort events = %v", got)
	}
	if !readJSON[bool](t, h, "aborted") || readJSON[string](t, h, "reason") == "" {
		t.Fatal("signal not aborted or no reason")
	}
}

// recordingTB collects the failures a Host reports for uncaught exceptions.
type recordingTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestUncaughtCallbackExceptionFailsTheTest(t *testing.T) {
	t.Parallel()
	rec := &recordingTB{TB: t}
	h := jshost.New(rec, jshost.Options{})
	mustEval(t, h, `globalThis.after = false; setTimeout(() => { throw new Error("bad callback") }, 0); setTimeout(() => { after = true }, 1)`)
	mustWait(t, h, "after")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], "bad callback") {
		t.Fatalf("reported failures = %q, want one naming the exception", rec.errs)
	}
}

// echoServer is a gws server that echoes text messages, offers the
// "ripple.v1" subprotocol, and closes with 4000 "bye" when told "close-me".
func echoServer(t *testing.T) string {
	t.Helper()
	up := gws.NewUpgrader(&echo{}, &gws.ServerOption{SubProtocols: []string{"ripple.v1"}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		go c.ReadLoop()
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

type echo struct{ gws.BuiltinEventHandler }

func (echo) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	if m.Data.String() == "close-me" {
		_ = c.WriteClose(4000, []byte("bye"))
		return
	}
	_ = c.WriteMessage(m.Opcode, m.Bytes())
}

type closeEvent struct {
	Code     int    `json:"code"`
	Reason   string `json:"reason"`
	WasClean bool   `json:"wasClean"`
}

const openSocket = `
	globalThis.events = [];
	globalThis.closed = null;
	globalThis.ws = new WebSocket(URL_, ["ripple.v1"]);
	globalThis.initialState = ws.readyState;
	ws.onopen = () => { events.push("open " + ws.protocol + " " + ws.readyState); ws.send("hello"); };
	ws.addEventListener("message", (e) => events.push("message " + e.data));
	ws.onclose = (e) => { closed = {code: e.code, reason: e.reason, wasClean: e.wasClean, state: ws.readyState}; };
`

func TestWebSocket(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		close func(t *testing.T, h *jshost.Host)
		want  closeEvent
	}{
		{
			name:  "client closes",
			close: func(t *testing.T, h *jshost.Host) { mustEval(t, h, `ws.close(4001, "done")`) },
			want:  closeEvent{Code: 4001, Reason: "done", WasClean: true},
		},
		{
			name:  "server closes",
			close: func(t *testing.T, h *jshost.Host) { mustEval(t, h, `ws.send("close-me")`) },
			want:  closeEvent{Code: 4000, Reason: "bye", WasClean: true},
		},
		{
			name: "socket cut from Go",
			close: func(t *testing.T, h *jshost.Host) {
				if n := h.CutSockets(); n != 1 {
					t.Fatalf("CutSockets cut %d sockets, want 1", n)
				}
			},
			want: closeEvent{Code: 1006, WasClean: false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url := echoServer(t)
			h := jshost.New(t, jshost.Options{})
			mustEval(t, h, strings.Replace(openSocket, "URL_", fmt.Sprintf("%q", url), 1))
			if got := readJSON[int](t, h, "initialState"); got != 0 {
				t.Fatalf("readyState right after the constructor = %d, want 0 (CONNECTING)", got)
			}
			mustWait(t, h, `events.length === 2`)
			if got := readJSON[[]string](t, h, "events"); fmt.Sprint(got) != "[open ripple.v1 1 message hello]" {
				t.Fatalf("events = %q", got)
			}
			if n := h.OpenSockets(); n != 1 {
				t.Fatalf("OpenSockets = %d, want 1", n)
			}
			tt.close(t, h)
			mustWait(t, h, `closed !== null`)
			got := readJSON[closeEvent](t, h, "closed")
			if got != tt.want {
				t.Fatalf("close event = %+v, want %+v", got, tt.want)
			}
			if state := readJSON[int](t, h, "closed.state"); state != 3 {
				t.Fatalf("readyState in onclose = %d, want 3 (CLOSED)", state)
			}
			if n := h.OpenSockets(); n != 0 {
				t.Fatalf("OpenSockets after close = %d, want 0", n)
			}
		})
	}
}

func TestWebSocketDialFailure(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	srv.Close()
	h := jshost.New(t, jshost.Options{})
	mustEval(t, h, fmt.Sprintf(`
		globalThis.events = [];
		const ws = new WebSocket(%q);
		ws.onerror = () => events.push("error");
		ws.onclose = (e) => events.push("close " + e.code + " " + e.wasClean);
	`, url))
	mustWait(t, h, `events.length === 2`)
	if got := readJSON[[]string](t, h, "events"); fmt.Sprint(got) != "[error close 1006 false]" {
		t.Fatalf("events = %q", got)
	}
}

func TestWebSocketRejectsSendWhileConnecting(t *testing.T) {
	t.Parallel()
	h := jshost.New(t, jshost.Options{})
	url := echoServer(t)
	got := readJSON[string](t, h, fmt.Sprintf(`(() => {
		const ws = new WebSocket(%q);
		try { ws.send("too early"); return "sent" } catch (e) { return e.message } finally { ws.close() }
	})()`, url))
	if !strings.Contains(got, "CONNECTING") {
		t.Fatalf("send while connecting: %q, want an InvalidStateError", got)
	}
}

func TestClosedHostRefusesWork(t *testing.T) {
	t.Parallel()
	h := jshost.New(t, jshost.Options{})
	h.Close()
	if err := h.Eval("late", "1"); !errors.Is(err, jshost.ErrClosed) {
		t.Fatalf("Eval after Close: err = %v, want ErrClosed", err)
	}
}

func TestPausedDialsWaitForResume(t *testing.T) {
	t.Parallel()
	url := echoServer(t)
	h := jshost.New(t, jshost.Options{})
	h.PauseDials()
	mustEval(t, h, fmt.Sprintf(`globalThis.opened = false; new WebSocket(%q, "ripple.v1").onopen = () => { opened = true }`, url))
	if n := h.HeldDials(); n != 1 {
		t.Fatalf("HeldDials = %d, want 1", n)
	}
	if readJSON[bool](t, h, "opened") {
		t.Fatal("socket opened while dials were paused")
	}
	h.ResumeDials()
	mustWait(t, h, "opened")
}

func TestWebSocketSendsConfiguredHeaders(t *testing.T) {
	t.Parallel()
	origins := make(chan string, 1)
	up := gws.NewUpgrader(&gws.BuiltinEventHandler{}, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origins <- r.Header.Get("Origin")
		c, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		go c.ReadLoop()
	}))
	t.Cleanup(srv.Close)
	h := jshost.New(t, jshost.Options{Header: http.Header{"Origin": {"https://app.example"}}})
	mustEval(t, h, fmt.Sprintf(`globalThis.opened = false; new WebSocket(%q).onopen = () => { opened = true }`, "ws"+strings.TrimPrefix(srv.URL, "http")))
	mustWait(t, h, "opened")
	if got := <-origins; got != "https://app.example" {
		t.Fatalf("Origin = %q, want the configured one", got)
	}
}

func BenchmarkJSON(b *testing.B) {
	h := jshost.New(b, jshost.Options{})
	var v int
	for b.Loop() {
		if err := h.JSON("1 + 1", &v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWebSocketEcho(b *testing.B) {
	up := gws.NewUpgrader(&echo{}, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		go c.ReadLoop()
	}))
	b.Cleanup(srv.Close)
	h := jshost.New(b, jshost.Options{})
	ctx := context.Background()
	if err := h.Eval("setup", fmt.Sprintf(`
		globalThis.received = 0;
		globalThis.ws = new WebSocket(%q);
		ws.onmessage = () => { received++ };
	`, "ws"+strings.TrimPrefix(srv.URL, "http"))); err != nil {
		b.Fatal(err)
	}
	if err := h.WaitUntil(ctx, "ws.readyState === 1"); err != nil {
		b.Fatal(err)
	}
	n := 0
	for b.Loop() {
		n++
		if err := h.Eval("send", `ws.send("ping")`); err != nil {
			b.Fatal(err)
		}
		if err := h.WaitUntil(ctx, fmt.Sprintf("received === %d", n)); err != nil {
			b.Fatal(err)
		}
	}
}
