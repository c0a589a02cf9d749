// client.js is the e2e tests' JavaScript side, run after the client bundle
// (global RippleBundle) in either engine: QuickJS under jshost, or Node. It
// builds one QueryClient and one RealtimeClient, and exposes `harness`, whose
// methods the Go tests call by name. Rows are read through the host's async
// function `selectRows(table, filter)`, which queries Postgres from Go.
// Waiting happens here, re-checked on every cache, socket or subscription
// event, so both engines wait the same way and nothing polls.
(() => {
  "use strict";
  const B = globalThis.RippleBundle;
  let qc;
  let rt;
  const watches = new Map();
  const errors = [];
  const checks = new Set();

  const poke = () => {
    for (const c of [...checks]) c();
  };

  // canon renders a value as JSON with sorted object keys and rows sorted by id,
  // so that a cache and a SELECT of the same rows compare equal.
  const canon = (v) => JSON.stringify(sortDeep(v));
  const sortDeep = (v) => {
    if (Array.isArray(v)) {
      const items = v.map(sortDeep);
      if (items.every((x) => x && typeof x === "object" && "id" in x)) {
        items.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      }
      return items;
    }
    if (v && typeof v === "object") {
      const out = {};
      for (const k of Object.keys(v).sort()) out[k] = sortDeep(v[k]);
      return out;
    }
    return v;
  };

  // until resolves once check() holds, re-checking after every event; it
  // rejects after timeoutMs with describe()'s account of the last state.
  const until = (check, timeoutMs, describe) => new Promise((resolve, reject) => {
    let timer;
    const run = () => {
      let ok = false;
      try { ok = check(); } catch (e) { finish(); reject(e); return; }
      if (ok) { finish(); resolve(null); }
    };
    const finish = () => { checks.delete(run); clearTimeout(timer); };
    checks.add(run);
    timer = setTimeout(() => { finish(); reject(new Error("timed out after " + timeoutMs + " ms: " + describe())); }, timeoutMs);
    run();
  });

  const watch = (name) => {
    const w = watches.get(name);
    if (!w) throw new Error("no watch named " + name);
    return w;
  };

  globalThis.harness = {
    // start creates the clients. options: {url, token, backoffMs, random}.
    start(options) {
      qc = new B.QueryClient({
        defaultOptions: { queries: { retry: 10, retryDelay: 100, staleTime: Infinity } },
      });
      qc.getQueryCache().subscribe(poke);
      rt = new B.RealtimeClient({
        url: options.url,
        auth: () => options.token,
        WebSocket: globalThis.WebSocket,
        backoff: { initialMs: options.backoffMs || 200, maxMs: 1000 },
        random: options.random === undefined ? Math.random : () => options.random,
        heartbeat: false,
        onError: (e) => { errors.push(String((e && e.message) || JSON.stringify(e))); poke(); },
      });
      rt.onStatus(poke);
      return null;
    },

    // watch sets up query `name`: spec {channel, filter, table, fetch, bind}.
    // fetch mounts a QueryObserver (the query is fetched and stays active);
    // bind connects it to the channel with bindQuery. Nothing is ever
    // unwatched: the engine ends with the test.
    watch(name, spec) {
      const w = {
        key: ["e2e", name],
        fetches: 0,
        changes: 0,
        resyncs: [],
        acks: [],
      };
      watches.set(name, w);
      const queryFn = () => {
        w.fetches++;
        return selectRows(spec.table, spec.filter || null);
      };
      if (spec.fetch !== false) {
        const observer = new B.QueryObserver(qc, { queryKey: w.key, queryFn });
        observer.subscribe(poke);
      } else {
        qc.getQueryCache().build(qc, { queryKey: w.key, queryFn });
      }
      w.bound = spec.bind !== false;
      if (w.bound) {
        // A plain listener on the same (channel, filter) shares the server
        // subscription and counts what it delivers.
        rt.subscribe({
          channel: spec.channel,
          filter: spec.filter,
          onChange: () => { w.changes++; poke(); },
          onResync: () => poke(),
        });
        B.bindQuery(qc, rt, {
          channel: spec.channel,
          filter: spec.filter,
          queryKey: w.key,
          onResync: (reason) => { w.resyncs.push(reason); poke(); },
          onSubscribed: (info) => { w.acks.push(info); poke(); },
        });
      }
      return null;
    },

    // state reports a watch's counters and cached data.
    state(name) {
      const w = watch(name);
      const q = qc.getQueryCache().find({ queryKey: w.key, exact: true });
      return {
        data: qc.getQueryData(w.key) ?? null,
        fetchStatus: q ? q.state.fetchStatus : null,
        fetches: w.fetches,
        changes: w.changes,
        resyncs: w.resyncs,
        acks: w.acks,
        status: rt.status,
        errors,
      };
    },

    // waitReady resolves once name is subscribed (if bound) and its data is
    // in and idle (if fetched).
    waitReady(name, fetched, timeoutMs) {
      const w = watch(name);
      return until(() => {
        if (w.bound && w.acks.length === 0) return false;
        if (!fetched) return true;
        const q = qc.getQueryCache().find({ queryKey: w.key, exact: true });
        return !!q && q.state.data !== undefined && q.state.fetchStatus === "idle";
      }, timeoutMs, () => JSON.stringify(this.state(name)));
    },

    // waitData resolves once name's cached data equals rows (compared by canon).
    waitData(name, rows, timeoutMs) {
      const w = watch(name);
      const want = canon(rows);
      return until(() => {
        const q = qc.getQueryCache().find({ queryKey: w.key, exact: true });
        return !!q && q.state.fetchStatus === "idle" && canon(q.state.data ?? null) === want;
      }, timeoutMs, () => "want " + want + "\nhave " + canon(qc.getQueryData(w.key) ?? null) + "\nstate " + JSON.stringify({ ...this.state(name), data: undefined }));
    },

    // waitCount resolves once name's counter (fetches, changes, resyncs or acks) reaches n.
    waitCount(name, counter, n, timeoutMs) {
      const w = watch(name);
      const value = () => (Array.isArray(w[counter]) ? w[counter].length : w[counter]);
      return until(() => value() >= n, timeoutMs, () => counter + " = " + value() + ", want " + n);
    },

    // waitStatus resolves once the connection status is one of statuses.
    waitStatus(statuses, timeoutMs) {
      return until(() => statuses.includes(rt.status), timeoutMs, () => "status " + rt.status);
    },
  };
})();
