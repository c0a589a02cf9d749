import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/** RippleDev is a running `ripple dev`: a gateway on a throwaway Postgres with the demo tables. */
export interface RippleDev {
  webSocketURL: string;
  databaseURL: string;
  /** stop sends SIGINT and waits for the process to exit. */
  stop(): Promise<void>;
}

const repoRoot = resolve(import.meta.dirname, "..", "..");

/**
 * startRippleDev builds the ripple binary from the repository and runs
 * `ripple dev` on a free port, resolving once it prints its URLs. The
 * process is stopped (SIGINT) by `stop`, and killed if Node exits first.
 */
export async function startRippleDev(readyTimeoutMs = 180_000): Promise<RippleDev> {
  const dir = mkdtempSync(join(tmpdir(), "ripple-it-"));
  const binary = join(dir, "ripple");
  const built = spawnSync("go", ["build", "-o", binary, "./backend/cmd/ripple"], { cwd: repoRoot, encoding: "utf8" });
  if (built.status !== 0) throw new Error(`go build ./backend/cmd/ripple failed:\n${built.stderr}`);

  const child = spawn(binary, ["dev", "--addr", "127.0.0.1:0"], { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] });
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((done) => child.once("exit", () => done()));

  try {
    const urls = await new Promise<{ ws: string; db: string }>((done, fail) => {
      const timer = setTimeout(() => fail(new Error(`ripple dev not ready within ${readyTimeoutMs} ms:\n${output}`)), readyTimeoutMs);
      const check = () => {
        const ws = /^\s*WebSocket:\s+(ws:\/\/\S+)/m.exec(output)?.[1];
        const db = /^\s*Database:\s+(postgres:\/\/\S+)/m.exec(output)?.[1];
        if (ws && db) {
          clearTimeout(timer);
          done({ ws, db });
        }
      };
      child.stdout!.on("data", check);
      child.once("exit", (code) => {
        clearTimeout(timer);
        fail(new Error(`ripple dev exited (${code}) before it was ready:\n${output}`));
      });
    });
    return {
      webSocketURL: urls.ws,
      databaseURL: urls.db,
      async stop() {
        if (child.exitCode === null) child.kill("SIGINT");
        await exited;
        process.off("exit", killOnExit);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await stopChild(child, exited);
    process.off("exit", killOnExit);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode === null) child.kill("SIGINT");
  await exited;
}
