package harness

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

//go:embed node-host.mjs
var nodeHostJS string

// nodeEngine runs a client under Node (node-host.mjs) and talks to it over
// stdin/stdout, one JSON message a line.
type nodeEngine struct {
	t      testing.TB
	cmd    *exec.Cmd
	in     io.WriteCloser
	db     Querier
	done   chan struct{} // closed when Node's stdout ends
	stderr *nodeLog

	writeMu sync.Mutex
	mu      sync.Mutex
	next    int64
	pending map[int64]chan nodeReply
	calls   sync.WaitGroup
}

type nodeReply struct {
	OK    bool            `json:"ok"`
	Value json.RawMessage `json:"value"`
	Error string          `json:"error"`
}

type nodeMessage struct {
	ID   *int64            `json:"id"`
	Call int64             `json:"call"`
	Fn   string            `json:"fn"`
	Args []json.RawMessage `json:"args"`
	nodeReply
}

// NewNodeClient is [NewClient] under Node instead of QuickJS: the same
// bundle and client.js, with the `ws` package from client-ts's
// node_modules as WebSocket. It needs `node` on PATH and `npm ci` run in
// client-ts.
func NewNodeClient(t testing.TB, wsURL string, db Querier, opts ClientOptions) *Client {
	t.Helper()
	if _, err := bundle(); err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("the Node cross-check needs node on PATH: %v", err)
	}
	dir := t.TempDir()
	host, client := filepath.Join(dir, "node-host.mjs"), filepath.Join(dir, "client.js")
	for path, src := range map[string]string{host: nodeHostJS, client: clientJS} {
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e := &nodeEngine{t: t, db: db, done: make(chan struct{}), pending: map[int64]chan nodeReply{}}
	e.cmd = exec.Command(node, host, BundlePath(), client, clientTSDir())
	e.stderr = &nodeLog{t: t}
	e.cmd.Stderr = e.stderr
	if e.in, err = e.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := e.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("start node: %v", err)
	}
	go e.read(out)
	t.Cleanup(e.close)
	c := &Client{t: t, engine: e}
	c.start(wsURL, opts)
	return c
}

// Await implements [Engine].
func (e *nodeEngine) Await(ctx context.Context, expr string, out any) error {
	e.mu.Lock()
	e.next++
	id := e.next
	ch := make(chan nodeReply, 1)
	e.pending[id] = ch
	e.mu.Unlock()
	if err := e.write(map[string]any{"id": id, "expr": expr}); err != nil {
		return fmt.Errorf("await %s: %w", expr, err)
	}
	select {
	case r := <-ch:
		if !r.OK {
			return fmt.Errorf("await %s: rejected: %s", expr, r.Error)
		}
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(r.Value, out); err != nil {
			return fmt.Errorf("await %s: decode: %w", expr, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("await %s: %w", expr, ctx.Err())
	case <-e.done:
		return fmt.Errorf("await %s: node exited; its stderr ends with:\n%s", expr, e.stderr.tail())
	}
}

func (e *nodeEngine) write(msg any) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	_, err = e.in.Write(append(b, '\n'))
	return err
}

// read dispatches Node's messages: answers to Await, and host calls.
func (e *nodeEngine) read(out io.Reader) {
	defer close(e.done)
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64*1024), 64*1024*1024)
	for sc.Scan() {
		var m nodeMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			e.t.Errorf("node: unreadable message %q: %v", sc.Bytes(), err)
			continue
		}
		if m.ID != nil {
			e.mu.Lock()
			ch := e.pending[*m.ID]
			delete(e.pending, *m.ID)
			e.mu.Unlock()
			if ch != nil {
				ch <- m.nodeReply
			}
			continue
		}
		e.calls.Add(1)
		go func() {
			defer e.calls.Done()
			e.serve(m)
		}()
	}
}

// serve runs one host function call from Node and writes its reply.
func (e *nodeEngine) serve(m nodeMessage) {
	reply := map[string]any{"reply": m.Call}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var value any
	var err error
	switch m.Fn {
	case "selectRows":
		value, err = selectRowsFunc(e.db)(ctx, m.Args)
	default:
		err = fmt.Errorf("no host function %s", m.Fn)
	}
	if err != nil {
		reply["ok"], reply["error"] = false, err.Error()
	} else {
		reply["ok"], reply["value"] = true, value
	}
	if err := e.write(reply); err != nil && !errors.Is(err, os.ErrClosed) {
		e.t.Logf("node: reply to %s: %v", m.Fn, err)
	}
}

// close ends Node (stdin closes, the host exits) and waits for it; a Node
// that does not exit within 10 s is killed.
func (e *nodeEngine) close() {
	_ = e.in.Close()
	select {
	case <-e.done:
	case <-time.After(10 * time.Second):
		_ = e.cmd.Process.Kill()
		<-e.done
	}
	if err := e.cmd.Wait(); err != nil {
		e.t.Errorf("node: %v", err)
	}
	e.calls.Wait()
}

// nodeLog sends Node's stderr to the test log and keeps its end for errors.
type nodeLog struct {
	t    testing.TB
	mu   sync.Mutex
	last []byte
}

// nodeLogTail is how much of Node's stderr an error quotes.
const nodeLogTail = 4096

func (l *nodeLog) Write(p []byte) (int, error) {
	l.t.Logf("node: %s", p)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last = append(l.last, p...)
	if n := len(l.last); n > nodeLogTail {
		l.last = append([]byte(nil), l.last[n-nodeLogTail:]...)
	}
	return len(p), nil
}

func (l *nodeLog) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.last)
}
