// node-host.mjs runs the client bundle and client.js under Node for the e2e
// tests' cross-check, with the `ws` package as WebSocket. It speaks
// line-delimited JSON with the Go test over stdin/stdout:
//   Go → Node  {"id":N,"expr":"…"}             evaluate, await, answer
//   Node → Go  {"id":N,"ok":true,"value":…}   or {"id":N,"ok":false,"error":"…"}
//   Node → Go  {"call":M,"fn":"selectRows","args":[…]}   a host function call
//   Go → Node  {"reply":M,"ok":true,"value":…} or {"reply":M,"ok":false,"error":"…"}
// Usage: node node-host.mjs BUNDLE CLIENT_JS CLIENT_TS_DIR
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import readline from "node:readline";
import vm from "node:vm";

const [bundlePath, clientPath, clientTSDir] = process.argv.slice(2);
// The ws package comes from client-ts's node_modules.
const require = createRequire(path.join(clientTSDir, "package.json"));
globalThis.WebSocket = require("ws");

const send = (msg) => process.stdout.write(JSON.stringify(msg) + "\n");
const describe = (e) => String(e && e.stack ? e.stack : e);

const calls = new Map();
let nextCall = 0;
globalThis.selectRows = (...args) => new Promise((resolve, reject) => {
  const call = ++nextCall;
  calls.set(call, { resolve, reject });
  send({ call, fn: "selectRows", args });
});

vm.runInThisContext(readFileSync(bundlePath, "utf8"), { filename: bundlePath });
vm.runInThisContext(readFileSync(clientPath, "utf8"), { filename: clientPath });

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const msg = JSON.parse(line);
  if ("reply" in msg) {
    const p = calls.get(msg.reply);
    calls.delete(msg.reply);
    if (msg.ok) p.resolve(msg.value);
    else p.reject(new Error(msg.error));
    return;
  }
  Promise.resolve()
    .then(() => vm.runInThisContext(msg.expr))
    .then(
      (value) => send({ id: msg.id, ok: true, value: value === undefined ? null : value }),
      (e) => send({ id: msg.id, ok: false, error: describe(e) }),
    );
});
lines.on("close", () => process.exit(0));
