// prelude.js installs the browser-like globals the client bundle needs, on top
// of the __jshost_* host functions defined by host.go. Timers and WebSockets are
// driven by Go: JS asks Go to arm a timer or open a socket, and Go later runs
// __jshost_timer_fire / __jshost_ws_event on the runtime's one goroutine.
(() => {
  "use strict";
  const g = globalThis;

  const report = (e) => __jshost_uncaught(String((e && e.stack) ? e + "\n" + e.stack : e));

  // console: routed to the test log.
  const fmt = (args) => args.map((a) => {
    if (typeof a === "string") return a;
    if (a instanceof Error) return a.stack ? a + "\n" + a.stack : String(a);
    try { return JSON.stringify(a); } catch (_) { return String(a); }
  }).join(" ");
  g.console = {};
  for (const level of ["log", "info", "warn", "error", "debug"]) {
    g.console[level] = (...args) => __jshost_log(level, fmt(args));
  }

  // Timers: ids are JS's; deadlines and ordering are Go's.
  const timers = new Map();
  let nextTimer = 1;
  const arm = (fn, ms, args, repeat) => {
    if (typeof fn !== "function") throw new TypeError("timer callback must be a function");
    const id = nextTimer++;
    const delay = Math.max(0, Number(ms) || 0);
    timers.set(id, { fn, args, delay, repeat });
    __jshost_timer_arm(id, delay);
    return id;
  };
  const clear = (id) => {
    if (timers.delete(id)) __jshost_timer_cancel(id);
  };
  g.setTimeout = (fn, ms, ...args) => arm(fn, ms, args, false);
  g.setInterval = (fn, ms, ...args) => arm(fn, ms, args, true);
  g.clearTimeout = clear;
  g.clearInterval = clear;
  g.__jshost_timer_fire = (id) => {
    const t = timers.get(id);
    if (!t) return;
    if (t.repeat) __jshost_timer_arm(id, t.delay);
    else timers.delete(id);
    try { t.fn(...t.args); } catch (e) { report(e); }
  };
  g.__jshost_timer_count = () => timers.size;

  if (typeof g.queueMicrotask !== "function") {
    g.queueMicrotask = (fn) => { Promise.resolve().then(fn).catch(report); };
  }

  // Events: just enough of EventTarget for WebSocket and AbortSignal.
  class EventTarget {
    #listeners = new Map();
    addEventListener(type, fn, options) {
      if (typeof fn !== "function" && !(fn && typeof fn.handleEvent === "function")) return;
      const list = this.#listeners.get(type) || [];
      if (list.some((l) => l.fn === fn)) return;
      list.push({ fn, once: !!(options && typeof options === "object" && options.once) });
      this.#listeners.set(type, list);
    }
    removeEventListener(type, fn) {
      const list = this.#listeners.get(type);
      if (!list) return;
      this.#listeners.set(type, list.filter((l) => l.fn !== fn));
    }
    dispatchEvent(event) {
      if (!event.target) event.target = this;
      event.currentTarget = this;
      const handler = this["on" + event.type];
      if (typeof handler === "function") {
        try { handler.call(this, event); } catch (e) { report(e); }
      }
      for (const l of [...(this.#listeners.get(event.type) || [])]) {
        if (l.once) this.removeEventListener(event.type, l.fn);
        try {
          if (typeof l.fn === "function") l.fn.call(this, event);
          else l.fn.handleEvent(event);
        } catch (e) { report(e); }
      }
      return true;
    }
  }
  class Event {
    constructor(type, init) {
      this.type = String(type);
      this.target = null;
      this.currentTarget = null;
      Object.assign(this, init || {});
    }
  }
  g.EventTarget = EventTarget;
  g.Event = Event;

  // AbortController / AbortSignal: what @tanstack/query-core uses to cancel fetches.
  class AbortSignal extends EventTarget {
    constructor() {
      super();
      this.aborted = false;
      this.reason = undefined;
      this.onabort = null;
    }
    throwIfAborted() { if (this.aborted) throw this.reason; }
  }
  class AbortController {
    constructor() { this.signal = new AbortSignal(); }
    abort(reason) {
      const s = this.signal;
      if (s.aborted) return;
      s.aborted = true;
      s.reason = reason === undefined ? new Error("This operation was aborted") : reason;
      s.dispatchEvent(new Event("abort"));
    }
  }
  g.AbortSignal = AbortSignal;
  g.AbortController = AbortController;

  // WebSocket, backed by a Go WebSocket client connection.
  const sockets = new Map();
  let nextSocket = 1;
  class WebSocket extends EventTarget {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSING = 2;
    static CLOSED = 3;
    #id;
    constructor(url, protocols) {
      super();
      const list = protocols === undefined ? [] : (Array.isArray(protocols) ? protocols : [protocols]).map(String);
      this.url = String(url);
      this.readyState = WebSocket.CONNECTING;
      this.protocol = "";
      this.extensions = "";
      this.binaryType = "blob";
      this.bufferedAmount = 0;
      this.onopen = null;
      this.onmessage = null;
      this.onclose = null;
      this.onerror = null;
      this.#id = nextSocket++;
      sockets.set(this.#id, this);
      __jshost_ws_open(this.#id, this.url, JSON.stringify(list));
    }
    get CONNECTING() { return 0; }
    get OPEN() { return 1; }
    get CLOSING() { return 2; }
    get CLOSED() { return 3; }
    send(data) {
      if (this.readyState === WebSocket.CONNECTING) {
        throw new Error("InvalidStateError: WebSocket is still in the CONNECTING state");
      }
      if (this.readyState !== WebSocket.OPEN) return;
      __jshost_ws_send(this.#id, String(data));
    }
    close(code, reason) {
      if (code !== undefined && code !== 1000 && !(code >= 3000 && code <= 4999)) {
        throw new Error("InvalidAccessError: close code must be 1000 or in 3000-4999, got " + code);
      }
      if (this.readyState === WebSocket.CLOSING || this.readyState === WebSocket.CLOSED) return;
      this.readyState = WebSocket.CLOSING;
      __jshost_ws_close(this.#id, code === undefined ? 1000 : code, reason === undefined ? "" : String(reason));
    }
    static __event(id, type, a, b, c) {
      const ws = sockets.get(id);
      if (!ws) return;
      switch (type) {
        case "open":
          if (ws.readyState !== WebSocket.CONNECTING) return;
          ws.readyState = WebSocket.OPEN;
          ws.protocol = a;
          ws.dispatchEvent(new Event("open"));
          break;
        case "message":
          if (ws.readyState !== WebSocket.OPEN) return;
          ws.dispatchEvent(new Event("message", { data: a }));
          break;
        case "error":
          ws.dispatchEvent(new Event("error"));
          break;
        case "close":
          sockets.delete(id);
          ws.readyState = WebSocket.CLOSED;
          ws.dispatchEvent(new Event("close", { code: a, reason: b, wasClean: c }));
          break;
      }
    }
  }
  g.WebSocket = WebSocket;
  g.__jshost_ws_event = WebSocket.__event;

  // Host functions registered from Go: JSON in, JSON out.
  g.__jshost_define = (name) => {
    g[name] = (...args) => {
      const out = __jshost_call(name, JSON.stringify(args));
      return out === "" ? undefined : JSON.parse(out);
    };
  };
  const pending = new Map();
  let nextCall = 1;
  g.__jshost_define_async = (name) => {
    g[name] = (...args) => new Promise((resolve, reject) => {
      const id = nextCall++;
      pending.set(id, { resolve, reject });
      __jshost_call_async(name, JSON.stringify(args), id);
    });
  };
  g.__jshost_settle = (id, ok, value) => {
    const p = pending.get(id);
    if (!p) return;
    pending.delete(id);
    if (ok) p.resolve(value);
    else p.reject(new Error(value));
  };

  // Await: hands a promise's outcome back to Go as JSON.
  g.__jshost_await = (id, value) => {
    Promise.resolve(value).then(
      (v) => __jshost_awaited(id, true, JSON.stringify(v === undefined ? null : v)),
      (e) => __jshost_awaited(id, false, String((e && e.stack) ? e + "\n" + e.stack : e)),
    );
  };
})();
