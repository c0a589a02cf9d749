// Package jshost runs JavaScript (the client bundle under test) inside
// QuickJS compiled to WebAssembly (github.com/fastschema/qjs), with the
// browser pieces the bundle needs supplied by Go: timers, a WebSocket class
// backed by a real WebSocket client connection, an AbortController, console,
// and host functions the test registers.
//
// One goroutine owns the runtime and runs everything posted to it, in order;
// after each piece of work it drains the microtask queue (a call from Go into
// QuickJS does not run promise callbacks by itself) and re-checks the
// conditions tests wait on. Each test gets a fresh runtime: QuickJS in
// WebAssembly never gives memory back, so runtimes are not reused.
package jshost

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fastschema/qjs"
)

//go:embed prelude.js
var prelude string

// ErrClosed is returned by calls on a Host that has been closed.
var ErrClosed = errors.New("jshost: host closed")

// Options configures a Host. The zero value is ready to use.
type Options struct {
	// Header holds extra HTTP headers sent with every WebSocket handshake
	// (for example Origin). Default: none.
	Header http.Header
	// CacheDir is wazero's compilation cache, which makes the first runtime
	// of a process start faster. Default: "ripple-jshost-cache" under the
	// user cache directory (or the temp directory when there is none).
	CacheDir string
}

// Host is one JavaScript runtime and the goroutine that owns it.
// Its methods may be called from any goroutine except the runtime's own
// (that is, not from inside a host function).
type Host struct {
	tb   testing.TB
	opts Options

	// Owned by the loop goroutine.
	rt      *qjs.Runtime
	ctx     *qjs.Context
	timers  timerQueue
	funcs   map[string]Func
	afuncs  map[string]AsyncFunc
	waiters []*waiter
	awaits  map[int64]chan awaited
	nextID  int64

	mu     sync.Mutex
	queue  []func()
	closed bool
	wake   chan struct{}

	sockets socketSet

	stop    chan struct{}
	done    chan struct{}
	cancel  context.CancelFunc
	bg      context.Context
	workers sync.WaitGroup
}

type waiter struct {
	expr string
	done chan error
}

type awaited struct {
	ok    bool
	value string
}

// New starts a fresh runtime with the prelude's globals installed and
// registers its Close with tb.Cleanup. It fails the test if the runtime
// cannot start. Uncaught exceptions in timer and event callbacks fail the
// test; console output goes to the test log.
func New(tb testing.TB, opts Options) *Host {
	tb.Helper()
	if opts.CacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		opts.CacheDir = filepath.Join(base, "ripple-jshost-cache")
	}
	bg, cancel := context.WithCancel(context.Background())
	h := &Host{
		tb:     tb,
		opts:   opts,
		funcs:  map[string]Func{},
		afuncs: map[string]AsyncFunc{},
		awaits: map[int64]chan awaited{},
		wake:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		bg:     bg,
		cancel: cancel,
	}
	h.sockets.init()
	started := make(chan error, 1)
	go h.loop(started)
	if err := <-started; err != nil {
		cancel()
		tb.Fatalf("jshost: start: %v", err)
	}
	tb.Cleanup(h.Close)
	return h
}

// Close stops the runtime: it cuts every open WebSocket, cancels running
// async host functions, waits for the goroutines the host started, and frees
// the runtime. Calling it again does nothing.
func (h *Host) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	h.mu.Unlock()

	h.cancel()
	h.sockets.cutAll()
	close(h.stop)
	<-h.done
	h.workers.Wait()
}

// Eval runs src as a global script (name is used in stack traces) and
// drains the microtasks it queued. The script's completion value is
// discarded: qjs would block until a Promise completion value settles.
func (h *Host) Eval(name, src string) error {
	return h.do(func() error {
		v, err := h.ctx.Eval(name, qjs.Code(src+"\n;undefined"))
		if err != nil {
			return fmt.Errorf("eval %s: %w", name, err)
		}
		v.Free()
		return nil
	})
}

// JSON evaluates the JavaScript expression expr and decodes its
// JSON.stringify form into out (undefined reads as null). Keep results
// small: reading a string out of QuickJS leaks about its size.
func (h *Host) JSON(expr string, out any) error {
	var s string
	err := h.do(func() error {
		var err error
		s, err = h.evalString("(() => { const v = (" + expr + "); return JSON.stringify(v === undefined ? null : v); })()")
		return err
	})
	if err != nil {
		return fmt.Errorf("read %s: %w", expr, err)
	}
	if err := json.Unmarshal([]byte(s), out); err != nil {
		return fmt.Errorf("decode %s: %w", expr, err)
	}
	return nil
}

// Await evaluates the JavaScript expression expr, waits until the promise
// it yields settles (the runtime keeps running timers and sockets meanwhile)
// and decodes the resolved value's JSON form into out (out may be nil).
// A rejection is returned as an error carrying its message and stack.
func (h *Host) Await(ctx context.Context, expr string, out any) error {
	ch := make(chan awaited, 1)
	err := h.do(func() error {
		h.nextID++
		id := h.nextID
		h.awaits[id] = ch
		v, err := h.ctx.Eval("await", qjs.Code(fmt.Sprintf("__jshost_await(%d, (%s))", id, expr)))
		if err != nil {
			delete(h.awaits, id)
			return err
		}
		v.Free()
		return nil
	})
	if err != nil {
		return fmt.Errorf("await %s: %w", expr, err)
	}
	select {
	case r := <-ch:
		if !r.ok {
			return fmt.Errorf("await %s: rejected: %s", expr, r.value)
		}
		if out == nil {
			return nil
		}
		if err := json.Unmarshal([]byte(r.value), out); err != nil {
			return fmt.Errorf("await %s: decode: %w", expr, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("await %s: %w", expr, ctx.Err())
	case <-h.done:
		return fmt.Errorf("await %s: %w", expr, ErrClosed)
	}
}

// WaitUntil blocks until the JavaScript expression cond is truthy, checking
// it now and again after every timer, socket event or other work the runtime
// runs, until ctx ends. It never polls on a clock.
func (h *Host) WaitUntil(ctx context.Context, cond string) error {
	w := &waiter{expr: cond, done: make(chan error, 1)}
	err := h.do(func() error {
		h.waiters = append(h.waiters, w)
		return nil
	})
	if err != nil {
		return fmt.Errorf("wait for %s: %w", cond, err)
	}
	select {
	case err := <-w.done:
		if err != nil {
			return fmt.Errorf("wait for %s: %w", cond, err)
		}
		return nil
	case <-ctx.Done():
		_ = h.do(func() error {
			h.dropWaiter(w)
			return nil
		})
		return fmt.Errorf("wait for %s: %w", cond, ctx.Err())
	case <-h.done:
		return fmt.Errorf("wait for %s: %w", cond, ErrClosed)
	}
}

// do runs fn on the runtime's goroutine and waits for it.
func (h *Host) do(fn func() error) error {
	res := make(chan error, 1)
	if !h.post(func() { res <- fn() }) {
		return ErrClosed
	}
	select {
	case err := <-res:
		return err
	case <-h.done:
		select {
		case err := <-res:
			return err
		default:
			return ErrClosed
		}
	}
}

// post queues fn to run on the runtime's goroutine; it never blocks. It
// reports false when the host is closed.
func (h *Host) post(fn func()) bool {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return false
	}
	h.queue = append(h.queue, fn)
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
	return true
}

// spawn runs fn on a goroutine the host waits for in Close.
func (h *Host) spawn(fn func()) {
	h.workers.Add(1)
	go func() {
		defer h.workers.Done()
		fn()
	}()
}

func (h *Host) loop(started chan<- error) {
	defer close(h.done)
	if err := h.startRuntime(); err != nil {
		started <- err
		return
	}
	started <- nil
	defer h.rt.Close()

	clock := time.NewTimer(time.Hour)
	defer clock.Stop()
	for {
		if next, ok := h.timers.next(); ok {
			clock.Reset(time.Until(next))
		} else {
			clock.Stop()
		}
		select {
		case <-h.stop:
			h.failWaiters()
			return
		case <-h.wake:
			h.runQueued()
		case <-clock.C:
			for _, id := range h.timers.due(time.Now()) {
				h.runJS("timer", fmt.Sprintf("__jshost_timer_fire(%d)", id))
				h.settle()
			}
		}
	}
}

func (h *Host) runQueued() {
	for {
		h.mu.Lock()
		batch := h.queue
		h.queue = nil
		h.mu.Unlock()
		if len(batch) == 0 {
			return
		}
		for _, fn := range batch {
			fn()
			h.settle()
		}
	}
}

// runJS runs src for its effects and reports an exception as a test failure:
// it is used for callbacks (timers, socket events) that have no caller to
// return an error to. The caller settles afterwards.
func (h *Host) runJS(name, src string) {
	v, err := h.ctx.Eval(name, qjs.Code(src))
	if err != nil {
		h.tb.Errorf("jshost: %s: %v", name, err)
		return
	}
	v.Free()
}

// settle drains microtasks, then resolves the waiters whose condition holds.
func (h *Host) settle() {
	if v, err := h.ctx.Eval("microtasks", qjs.Code("0")); err != nil {
		h.tb.Errorf("jshost: draining microtasks: %v", err)
	} else {
		v.Free()
	}
	kept := h.waiters[:0]
	for _, w := range h.waiters {
		v, err := h.ctx.Eval("condition", qjs.Code("!!("+w.expr+")"))
		switch {
		case err != nil:
			w.done <- err
		case v.Bool():
			v.Free()
			w.done <- nil
		default:
			v.Free()
			kept = append(kept, w)
		}
	}
	clear(h.waiters[len(kept):])
	h.waiters = kept
}

func (h *Host) dropWaiter(w *waiter) {
	for i, x := range h.waiters {
		if x == w {
			h.waiters = append(h.waiters[:i], h.waiters[i+1:]...)
			return
		}
	}
}

func (h *Host) failWaiters() {
	for _, w := range h.waiters {
		w.done <- ErrClosed
	}
	h.waiters = nil
}

// evalString evaluates src, which must yield a string, and returns it.
func (h *Host) evalString(src string) (string, error) {
	v, err := h.ctx.Eval("read", qjs.Code(src))
	if err != nil {
		return "", err
	}
	defer v.Free()
	return v.String(), nil
}

func (h *Host) startRuntime() error {
	rt, err := qjs.New(qjs.Option{CacheDir: h.opts.CacheDir, Stdout: testWriter{h.tb}, Stderr: testWriter{h.tb}})
	if err != nil {
		return fmt.Errorf("new runtime: %w", err)
	}
	h.rt = rt
	h.ctx = rt.Context()
	h.installHostFuncs()
	v, err := h.ctx.Eval("prelude.js", qjs.Code(prelude))
	if err != nil {
		rt.Close()
		return fmt.Errorf("prelude: %w", err)
	}
	v.Free()
	return nil
}

// testWriter sends QuickJS's own stdout and stderr to the test log.
type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Logf("jshost: %s", p)
	return len(p), nil
}
