// Processes the browser test starts: a PostgreSQL cluster of its own (so the
// gateway can be killed and started again while the data stays), the ripple
// binary built from this repository, and `ripple dev` on a fixed port.
import { execFileSync, spawn } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import pg from "pg";

/** repoRoot is the repository's root folder. */
export const repoRoot = resolve(import.meta.dirname, "..", "..", "..", "..");

/** demoDir is client-ts/examples/demo. */
export const demoDir = resolve(import.meta.dirname, "..");

/** waitFor calls check until it returns a truthy value, failing after timeoutMs with what it last threw. */
export async function waitFor(what, check, timeoutMs = 30_000, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ""}`);
    await new Promise((done) => setTimeout(done, everyMs));
  }
}

/** freePort asks the kernel for a free TCP port on 127.0.0.1. */
export async function freePort() {
  const server = createServer();
  await new Promise((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address();
  await new Promise((done) => server.close(done));
  return port;
}

/** pgBinDir finds initdb the way package devdb does: $RIPPLE_PG_BIN, PATH, then /usr/lib/postgresql/*\/bin. */
function pgBinDir() {
  if (process.env.RIPPLE_PG_BIN) return process.env.RIPPLE_PG_BIN;
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir && existsSync(join(dir, "initdb"))) return dir;
  }
  const debian = "/usr/lib/postgresql";
  const versions = existsSync(debian) ? readdirSync(debian).filter((v) => existsSync(join(debian, v, "bin", "initdb"))) : [];
  if (versions.length === 0) throw new Error("initdb not found: install PostgreSQL (apt-get install postgresql) or set RIPPLE_PG_BIN");
  versions.sort((a, b) => Number(a) - Number(b));
  return join(debian, versions.at(-1), "bin");
}

/**
 * startPostgres makes a throwaway cluster and starts it on a free port. As
 * root (initdb refuses root) it runs as user postgres. stop() shuts it down
 * and deletes it.
 */
export async function startPostgres() {
  const bin = pgBinDir();
  const dir = mkdtempSync(join(tmpdir(), "ripple-demo-pg-"));
  const owner = {};
  if (process.getuid?.() === 0) {
    owner.uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    owner.gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    chownSync(dir, owner.uid, owner.gid);
  }
  const data = join(dir, "data");
  execFileSync(join(bin, "initdb"), ["-D", data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"], {
    ...owner,
    stdio: "pipe",
  });
  const port = await freePort();
  const child = spawn(
    join(bin, "postgres"),
    ["-D", data, "-p", String(port), "-k", dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off"],
    { ...owner, stdio: ["ignore", "ignore", "pipe"] },
  );
  let log = "";
  child.stderr.on("data", (chunk) => (log += chunk));
  const exited = new Promise((done) => child.once("exit", done));
  const url = `postgres://postgres@127.0.0.1:${port}/postgres?sslmode=disable`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGINT");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor("PostgreSQL to accept connections", async () => {
      if (child.exitCode !== null) throw new Error(`postgres exited:\n${log}`);
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.end();
      return true;
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, stop };
}

/** buildRipple builds the ripple binary from the repository into a temporary folder. */
export function buildRipple() {
  const dir = mkdtempSync(join(tmpdir(), "ripple-demo-bin-"));
  const binary = join(dir, "ripple");
  execFileSync("go", ["build", "-o", binary, "./backend/cmd/ripple"], { cwd: repoRoot, stdio: ["ignore", "inherit", "inherit"] });
  return { binary, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * startRippleDev runs `ripple dev` on addr over databaseURL, serving the
 * built page, and resolves with the page URL once it prints "Open …".
 * kill(signal) ends it and waits for the exit.
 */
export async function startRippleDev({ binary, addr, databaseURL }) {
  const child = spawn(binary, ["dev", "--addr", addr, "--page", join(demoDir, "dist")], {
    cwd: repoRoot,
    env: { ...process.env, DATABASE_URL: databaseURL, DATABASE_URL_DIRECT: "", RIPPLE_LOG_LEVEL: "warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  const exited = new Promise((done) => child.once("exit", done));
  const kill = async (signal = "SIGINT") => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  try {
    const url = await waitFor(
      "ripple dev to print the page URL",
      () => {
        if (child.exitCode !== null) throw new Error(`ripple dev exited with ${child.exitCode}:\n${output}`);
        return /^Open (http:\/\/\S+)\/ in your browser/m.exec(output)?.[1];
      },
      120_000,
    );
    return { url, kill, output: () => output };
  } catch (error) {
    await kill("SIGKILL");
    throw error;
  }
}
