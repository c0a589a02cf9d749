// The demo page in a real browser (Debian's Chromium, driven by
// playwright-core) against `ripple dev`: two tabs follow rows written with
// SQL and through the page's buttons without refetching their lists, and
// both catch up after the gateway is killed and started again.
//
// Run: npm test (builds the page first). CHROMIUM overrides /usr/bin/chromium;
// RIPPLE_DEMO_SCREENSHOT=<path> also saves the final screenshot there
// (the README's docs/demo.png).
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { chromium } from "playwright-core";
import { buildRipple, demoDir, freePort, startPostgres, startRippleDev, waitFor } from "./support.mjs";

const chromiumFlags = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const deadline = 15_000;
const resultsDir = join(demoDir, "test-results");

/** Tab is one browser page and the list requests it made. */
class Tab {
  constructor(page) {
    this.page = page;
    this.listRequests = 0;
    page.on("request", (request) => {
      if (request.method() === "GET" && /^\/api\/projects(\/\d+\/jobs)?$/.test(new URL(request.url()).pathname)) this.listRequests++;
    });
  }

  badge() {
    return this.page.getByTestId("status");
  }

  /** settled waits until the page is live with both subscriptions acknowledged and nothing fetching. */
  async settled() {
    await this.page.waitForFunction(
      () => {
        const badge = document.querySelector('[data-testid="status"]');
        return (
          badge?.dataset.status === "live" &&
          badge.dataset.subscribed === "extraction_jobs,projects" &&
          badge.dataset.fetching === "0" &&
          document.querySelector('[data-testid="jobs-panel"]') !== null
        );
      },
      null,
      { timeout: 60_000, polling: 50 },
    );
  }

  /** projects returns the projects list as "id:name" in page order. */
  projects() {
    return this.page.$$eval('[data-testid="project"]', (items) =>
      items.map((li) => `${li.dataset.id}:${li.querySelector('[data-testid="project-name"]')?.textContent}`),
    );
  }

  /** jobs returns the selected project's jobs as "id:status" in page order. */
  jobs() {
    return this.page.$$eval('[data-testid="job"]', (items) =>
      items.map((li) => `${li.dataset.id}:${li.querySelector('[data-testid="job-status"]')?.textContent}`),
    );
  }

  async counter(name) {
    return Number(await this.page.getByTestId(name).textContent());
  }

  async selectedProject() {
    return Number(await this.page.getByTestId("jobs-panel").getAttribute("data-project-id"));
  }

  /** project returns the list item of project id. */
  project(id) {
    return this.page.locator(`[data-testid="project"][data-id="${id}"]`);
  }

  job(id) {
    return this.page.locator(`[data-testid="job"][data-id="${id}"]`);
  }
}

describe("demo page against ripple dev", { timeout: 300_000 }, () => {
  let postgres, ripple, build, browser, db, addr;
  /** @type {Tab[]} */
  let tabs;

  before(async () => {
    build = buildRipple();
    postgres = await startPostgres();
    addr = `127.0.0.1:${await freePort()}`;
    ripple = await startRippleDev({ binary: build.binary, addr, databaseURL: postgres.url });
    db = new pg.Client({ connectionString: postgres.url });
    await db.connect();
    browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: chromiumFlags });
    tabs = [];
    for (let i = 0; i < 2; i++) {
      const page = await browser.newPage({ viewport: { width: 1200, height: 720 } });
      page.on("pageerror", (error) => console.error(`tab ${i}: page error: ${error.message}`));
      const tab = new Tab(page);
      await page.goto(ripple.url + "/");
      tabs.push(tab);
    }
    await Promise.all(tabs.map((tab) => tab.settled()));
  });

  after(async () => {
    // Artifacts for a failed run: what each tab showed last and what ripple dev printed.
    mkdirSync(resultsDir, { recursive: true });
    for (const [i, tab] of (tabs ?? []).entries()) {
      await tab.page.screenshot({ path: join(resultsDir, `last-tab-${i}.png`) }).catch((error) => console.error(`screenshot of tab ${i}: ${error.message}`));
    }
    if (ripple) writeFileSync(join(resultsDir, "ripple-dev.log"), ripple.output());
    await browser?.close();
    await db?.end();
    await ripple?.kill();
    await postgres?.stop();
    build?.remove();
  });

  /**
   * withoutRefetch runs change, then waits until seen(tab) holds on every
   * tab, and asserts no tab requested a list meanwhile and each applied at
   * least one cache patch.
   */
  async function withoutRefetch(change, seen) {
    const before = await Promise.all(tabs.map(async (t) => ({ requests: t.listRequests, patches: await t.counter("patches"), refetches: await t.counter("refetches") })));
    await change();
    for (const [i, tab] of tabs.entries()) {
      await waitFor(`tab ${i} to show the change`, () => seen(tab), deadline);
    }
    for (const [i, tab] of tabs.entries()) {
      assert.equal(tab.listRequests, before[i].requests, `tab ${i} requested a list`);
      assert.equal(await tab.counter("refetches"), before[i].refetches, `tab ${i} counted a refetch`);
      assert.ok((await tab.counter("patches")) > before[i].patches, `tab ${i} applied no patch`);
    }
  }

  /** dbProjects and dbJobs read what the lists must equal, in the page's order. */
  async function dbProjects() {
    const { rows } = await db.query("SELECT id, name FROM projects ORDER BY created_at DESC, id DESC");
    return rows.map((r) => `${r.id}:${r.name}`);
  }
  async function dbJobs(projectId) {
    const { rows } = await db.query("SELECT id, status FROM extraction_jobs WHERE project_id = $1 ORDER BY created_at DESC, id DESC", [projectId]);
    return rows.map((r) => `${r.id}:${r.status}`);
  }

  it("starts with the seeded rows, newest first, on both tabs", async () => {
    const want = await dbProjects();
    assert.equal(want.length, 3);
    for (const tab of tabs) {
      assert.deepEqual(await tab.projects(), want);
      assert.equal(await tab.selectedProject(), Number(want[0].split(":")[0]));
      assert.deepEqual(await tab.jobs(), await dbJobs(await tab.selectedProject()));
    }
  });

  it("patches rows inserted, updated and deleted with SQL into both tabs without a refetch", async () => {
    const selected = await tabs[0].selectedProject();
    let projectId, jobId;
    await withoutRefetch(
      async () => {
        ({ rows: [{ id: projectId }] } = await db.query("INSERT INTO projects (name, organization_id) VALUES ('Inserted by SQL', 'org-1') RETURNING id"));
      },
      async (tab) => (await tab.projects())[0] === `${projectId}:Inserted by SQL`,
    );
    const { rows: [other] } = await db.query(
      "INSERT INTO extraction_jobs (project_id, organization_id, document_name) SELECT id, organization_id, 'other-project.pdf' FROM projects WHERE id <> $1 LIMIT 1 RETURNING id",
      [selected],
    );
    await withoutRefetch(
      async () => {
        ({ rows: [{ id: jobId }] } = await db.query(
          "INSERT INTO extraction_jobs (project_id, organization_id, document_name) SELECT id, organization_id, 'sql.pdf' FROM projects WHERE id = $1 RETURNING id",
          [selected],
        ));
      },
      async (tab) => (await tab.jobs())[0] === `${jobId}:queued`,
    );
    for (const tab of tabs) assert.equal(await tab.job(other.id).count(), 0, "a job of another project entered the filtered list");

    await withoutRefetch(
      () => db.query("UPDATE projects SET name = 'Renamed by SQL' WHERE id = $1", [projectId]),
      async (tab) => (await tab.projects()).includes(`${projectId}:Renamed by SQL`),
    );
    await withoutRefetch(
      () => db.query("UPDATE extraction_jobs SET status = 'running', progress = 40 WHERE id = $1", [jobId]),
      async (tab) => (await tab.jobs()).includes(`${jobId}:running`),
    );
    await withoutRefetch(
      () => db.query("DELETE FROM extraction_jobs WHERE id = $1", [jobId]),
      async (tab) => (await tab.job(jobId).count()) === 0,
    );
    await withoutRefetch(
      () => db.query("DELETE FROM projects WHERE id = $1", [projectId]),
      async (tab) => (await tab.project(projectId).count()) === 0,
    );
    for (const tab of tabs) assert.deepEqual(await tab.projects(), await dbProjects());
  });

  it("patches changes made with one tab's buttons into the other without a refetch", async () => {
    const [a, b] = tabs;
    await withoutRefetch(
      async () => {
        await a.page.getByTestId("new-project-name").fill("Made in tab A");
        await a.page.getByRole("button", { name: "Create" }).click();
      },
      async (tab) => (await tab.projects())[0]?.endsWith(":Made in tab A"),
    );
    const id = Number((await b.projects())[0].split(":")[0]);
    await withoutRefetch(
      async () => {
        await b.project(id).getByRole("button", { name: "Rename" }).click();
        await b.project(id).getByLabel("Project name").fill("Renamed in tab B");
        await b.project(id).getByRole("button", { name: "Save" }).click();
      },
      async (tab) => (await tab.projects()).includes(`${id}:Renamed in tab B`),
    );
    const jobsBefore = await a.jobs();
    let jobId;
    await withoutRefetch(
      () => a.page.getByTestId("add-job").click(),
      async (tab) => {
        const [first] = await tab.jobs();
        if (!first?.endsWith(":queued") || jobsBefore.includes(first)) return false;
        jobId = first.split(":")[0];
        return true;
      },
    );
    await withoutRefetch(
      () => a.job(jobId).getByRole("button", { name: "Advance" }).click(),
      async (tab) => (await tab.jobs()).includes(`${jobId}:running`),
    );
    await withoutRefetch(
      () => b.project(id).getByRole("button", { name: "Delete" }).click(),
      async (tab) => (await tab.project(id).count()) === 0,
    );
  });

  it("shows reconnecting (offline without a network) while the gateway is down, then live, with both lists equal to the database", async () => {
    const refetchesBefore = await Promise.all(tabs.map((t) => t.counter("refetches")));
    const badge = (tab, want) => waitFor(`the badge to say ${want}`, async () => (await tab.badge().getAttribute("data-status")) === want, deadline);
    await ripple.kill("SIGKILL");
    for (const tab of tabs) await badge(tab, "reconnecting");
    // Disconnected and without a network, the badge says offline.
    await tabs[1].page.context().setOffline(true);
    await badge(tabs[1], "offline");
    await tabs[1].page.context().setOffline(false);
    await badge(tabs[1], "reconnecting");

    // Written while nobody listens: these notifications are lost for good.
    const selected = await tabs[0].selectedProject();
    await db.query("INSERT INTO projects (name, organization_id) VALUES ('Added while offline', 'org-1')");
    await db.query("UPDATE extraction_jobs SET status = 'succeeded', progress = 100 WHERE project_id = $1", [selected]);
    await db.query(
      "INSERT INTO extraction_jobs (project_id, organization_id, document_name) SELECT id, organization_id, 'offline.pdf' FROM projects WHERE id = $1",
      [selected],
    );

    ripple = await startRippleDev({ binary: build.binary, addr, databaseURL: postgres.url });
    // The new gateway has a new epoch: each subscription is acknowledged and
    // then told to resync, which refetches both lists once at least.
    for (const [i, tab] of tabs.entries()) {
      await waitFor(`tab ${i} to refetch both lists`, async () => (await tab.counter("refetches")) >= refetchesBefore[i] + 2, 60_000);
      await tab.settled();
    }
    const [projects, jobs] = [await dbProjects(), await dbJobs(selected)];
    for (const [i, tab] of tabs.entries()) {
      assert.deepEqual(await tab.projects(), projects, `tab ${i} projects`);
      assert.equal(await tab.selectedProject(), selected);
      assert.deepEqual(await tab.jobs(), jobs, `tab ${i} jobs`);
    }
    assert.ok(projects.some((p) => p.endsWith(":Added while offline")));

    mkdirSync(resultsDir, { recursive: true });
    const shot = join(resultsDir, "final.png");
    await tabs[0].page.mouse.move(0, 0);
    await tabs[0].page.locator(".app").screenshot({ path: shot });
    if (process.env.RIPPLE_DEMO_SCREENSHOT) copyFileSync(shot, process.env.RIPPLE_DEMO_SCREENSHOT);
  });
});
