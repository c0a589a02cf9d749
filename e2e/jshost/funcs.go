package jshost

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/fastschema/qjs"
)

// Func is a host function JavaScript calls synchronously. It runs on the
// runtime's goroutine and receives the call's arguments as JSON; its result
// is JSON-encoded and parsed back in JavaScript (nil reads as null). An error
// becomes a thrown Error.
type Func func(args []json.RawMessage) (any, error)

// AsyncFunc is a host function JavaScript calls as an async function: the
// call returns a Promise at once, AsyncFunc runs on its own goroutine, and
// its result (or error) settles the Promise on the runtime's goroutine.
// ctx ends when the host closes.
type AsyncFunc func(ctx context.Context, args []json.RawMessage) (any, error)

// SetFunc defines the global JavaScript function name, backed by fn.
func (h *Host) SetFunc(name string, fn Func) error {
	return h.define(name, func() { h.funcs[name] = fn }, "__jshost_define")
}

// SetAsyncFunc defines the global async JavaScript function name, backed by fn.
func (h *Host) SetAsyncFunc(name string, fn AsyncFunc) error {
	return h.define(name, func() { h.afuncs[name] = fn }, "__jshost_define_async")
}

func (h *Host) define(name string, register func(), definer string) error {
	err := h.do(func() error {
		register()
		v, err := h.ctx.Eval("define", qjs.Code(definer+"("+quote(name)+")"))
		if err != nil {
			return err
		}
		v.Free()
		return nil
	})
	if err != nil {
		return fmt.Errorf("define host function %s: %w", name, err)
	}
	return nil
}

// installHostFuncs defines the __jshost_* functions the prelude builds on.
func (h *Host) installHostFuncs() {
	set := func(name string, fn func(args []*qjs.Value) (*qjs.Value, error)) {
		h.ctx.SetFunc(name, func(this *qjs.This) (*qjs.Value, error) {
			args := this.Args()
			// qjs clones every argument and never frees the clones.
			defer func() {
				for _, a := range args {
					a.Free()
				}
			}()
			return fn(args)
		})
	}
	ctx := h.ctx
	undefined := func() (*qjs.Value, error) { return ctx.NewUndefined(), nil }

	set("__jshost_log", func(a []*qjs.Value) (*qjs.Value, error) {
		h.tb.Logf("js console.%s: %s", argString(a, 0), argString(a, 1))
		return undefined()
	})
	set("__jshost_uncaught", func(a []*qjs.Value) (*qjs.Value, error) {
		h.tb.Errorf("jshost: uncaught exception in a callback: %s", argString(a, 0))
		return undefined()
	})
	set("__jshost_timer_arm", func(a []*qjs.Value) (*qjs.Value, error) {
		ms := argFloat(a, 1)
		h.timers.arm(argInt(a, 0), time.Duration(ms*float64(time.Millisecond)))
		return undefined()
	})
	set("__jshost_timer_cancel", func(a []*qjs.Value) (*qjs.Value, error) {
		h.timers.cancel(argInt(a, 0))
		return undefined()
	})
	set("__jshost_call", func(a []*qjs.Value) (*qjs.Value, error) {
		name := argString(a, 0)
		fn, ok := h.funcs[name]
		if !ok {
			return nil, fmt.Errorf("no host function %s", name)
		}
		args, err := decodeArgs(argString(a, 1))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out, err := fn(args)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		b, err := json.Marshal(out)
		if err != nil {
			return nil, fmt.Errorf("%s: encode result: %w", name, err)
		}
		return ctx.NewString(string(b)), nil
	})
	set("__jshost_call_async", func(a []*qjs.Value) (*qjs.Value, error) {
		name, id := argString(a, 0), argInt(a, 2)
		fn, ok := h.afuncs[name]
		if !ok {
			return nil, fmt.Errorf("no async host function %s", name)
		}
		args, err := decodeArgs(argString(a, 1))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		h.spawn(func() {
			out, err := fn(h.bg, args)
			var settle string
			if err == nil {
				b, merr := json.Marshal(out)
				if merr != nil {
					err = fmt.Errorf("encode result: %w", merr)
				} else {
					settle = fmt.Sprintf("__jshost_settle(%d, true, %s)", id, b)
				}
			}
			if err != nil {
				settle = fmt.Sprintf("__jshost_settle(%d, false, %s)", id, quote(name+": "+err.Error()))
			}
			h.post(func() { h.runJS("settle", settle) })
		})
		return undefined()
	})
	set("__jshost_awaited", func(a []*qjs.Value) (*qjs.Value, error) {
		id := argInt(a, 0)
		if ch, ok := h.awaits[id]; ok {
			delete(h.awaits, id)
			ch <- awaited{ok: argBool(a, 1), value: argString(a, 2)}
		}
		return undefined()
	})
	set("__jshost_ws_open", func(a []*qjs.Value) (*qjs.Value, error) {
		var protocols []string
		if err := json.Unmarshal([]byte(argString(a, 2)), &protocols); err != nil {
			return nil, fmt.Errorf("WebSocket protocols: %w", err)
		}
		h.openSocket(argInt(a, 0), argString(a, 1), protocols)
		return undefined()
	})
	set("__jshost_ws_send", func(a []*qjs.Value) (*qjs.Value, error) {
		h.sockets.send(argInt(a, 0), argString(a, 1))
		return undefined()
	})
	set("__jshost_ws_close", func(a []*qjs.Value) (*qjs.Value, error) {
		h.sockets.close(argInt(a, 0), uint16(argInt(a, 1)), argString(a, 2))
		return undefined()
	})
}

func decodeArgs(s string) ([]json.RawMessage, error) {
	var args []json.RawMessage
	if err := json.Unmarshal([]byte(s), &args); err != nil {
		return nil, fmt.Errorf("decode arguments: %w", err)
	}
	return args, nil
}

func argString(a []*qjs.Value, i int) string {
	if i >= len(a) {
		return ""
	}
	return a[i].String()
}

func argInt(a []*qjs.Value, i int) int64 {
	if i >= len(a) {
		return 0
	}
	return a[i].Int64()
}

func argFloat(a []*qjs.Value, i int) float64 {
	if i >= len(a) {
		return 0
	}
	return a[i].Float64()
}

func argBool(a []*qjs.Value, i int) bool {
	return i < len(a) && a[i].Bool()
}

// quote renders s as a JavaScript string literal.
func quote(s string) string {
	b, _ := json.Marshal(s) // never fails for a string: invalid UTF-8 is replaced
	return string(b)
}
