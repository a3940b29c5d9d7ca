/**
 * The views in a real browser: executes notebooks/views-gallery.ipynb through the moescope kernel
 * (nbconvert, Debian's Jupyter), opens it in classic Notebook 6 in headless Chromium and checks that
 * every chart rendered live (a plotly element with data, the static image gone), that the linked
 * panels follow a click, and that no page error occurred; then exports it with nbconvert --to html
 * and opens that file with ALL network blocked, checking the charts still render (plotly.js comes
 * from the output itself, not a CDN). Screenshots go to a temp folder whose path is printed.
 *
 * Skipped (with a message) where Chromium, classic Notebook or the built addon are missing:
 * tools/test.sh installs the Debian packages.
 */
import { spawn, spawnSync, ChildProcess } from "child_process";
import { existsSync, mkdtempSync, mkdirSync, readFileSync, writeFileSync } from "fs";
import { createServer } from "net";
import { tmpdir } from "os";
import { join, resolve } from "path";
import { afterAll, describe, expect, it } from "vitest";
import { Model } from "../../engine/src/model";
import { linkedView } from "../../widgets/src/linked";

const ROOT = resolve(__dirname, "..", "..");
const CHROMIUM = "/usr/bin/chromium";
const JUPYTER = "/usr/bin/jupyter";
const ready = existsSync(CHROMIUM) && existsSync(JUPYTER) && existsSync(join(ROOT, "build/Release/moescope.node")) &&
  spawnSync("/usr/bin/python3", ["-c", "import notebook, nbconvert"]).status === 0;
if (!ready) console.warn("[views browser test] skipped: needs /usr/bin/chromium, Debian jupyter-notebook + nbconvert and a built addon");

const PLOT_KINDS = ["routing-grid", "router-logits", "expert-load", "coactivation", "attention-heads", "attention-head", "residual-norms", "logit-lens", "compare", "linked"];
const HTML_KINDS = ["expert-text", "attention-text", "live-generation"];
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
    s.on("error", rej);
  });
}

const work = mkdtempSync(join(tmpdir(), "moescope-views-"));
const artifacts = join(work, "artifacts");
const env = {
  ...process.env,
  JUPYTER_PATH: join(work, "prefix", "share", "jupyter"),
  JUPYTER_DATA_DIR: join(work, "data"),
  JUPYTER_CONFIG_DIR: join(work, "config"),
  JUPYTER_RUNTIME_DIR: join(work, "runtime"),
  IPYTHONDIR: join(work, "ipython"),
  PYTHONNOUSERSITE: "1",
};
let server: ChildProcess | undefined;

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { cwd: ROOT, env, encoding: "utf8", timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
}

afterAll(() => {
  if (server?.pid) server.kill("SIGTERM");
  if (ready) console.log(`[views browser test] screenshots and exports in ${artifacts}`);
});

describe.skipIf(!ready)("views in a browser", () => {
  const nbDir = join(work, "nb");
  const nbPath = join(nbDir, "views-gallery.ipynb");

  it("executes the gallery through the moescope kernel", () => {
    mkdirSync(artifacts, { recursive: true });
    run("node", ["bin/moescope.js", "install", "--prefix", join(work, "prefix")]);
    // The notebook runs from notebooks/ (its relative model path), and its executed copy lands in nbDir.
    run(JUPYTER, ["nbconvert", "--to", "notebook", "--execute", "notebooks/views-gallery.ipynb", "--output-dir", nbDir,
      "--ExecutePreprocessor.timeout=120", "--ExecutePreprocessor.kernel_name=moescope"]);
    const nb = JSON.parse(readFileSync(nbPath, "utf8"));
    const outputs = nb.cells.flatMap((c: { outputs?: unknown[] }) => c.outputs ?? []) as { output_type: string; data?: Record<string, string> }[];
    expect(outputs.filter((o) => o.output_type === "error")).toEqual([]);
    const html = outputs.map((o) => o.data?.["text/html"] ?? "").join("");
    for (const k of [...PLOT_KINDS, ...HTML_KINDS]) expect(html).toContain(`data-moescope-kind="${k}"`);
    // plotly.js is shipped once per page, and nothing is loaded from elsewhere.
    expect(html.split("inlined once by moescope").length - 1).toBe(1);
    expect(html.replace(/<script type="text\/javascript">\/\* plotly\.js[\s\S]*?<\/script>/, "")).not.toMatch(/(src|href)=["']?https?:/i);
    // Trusted (signed with this test's own notebook secret), so the classic Notebook runs its scripts.
    run("/usr/bin/python3", ["-m", "nbformat.sign", nbPath]);
  }, 180_000);

  it("renders every view live in classic Notebook 6 (Chromium)", async () => {
    const port = await freePort();
    server = spawn(JUPYTER, ["notebook", "--no-browser", `--port=${port}`, "--ip=127.0.0.1", "--NotebookApp.token=", "--NotebookApp.password=",
      `--notebook-dir=${nbDir}`, "--NotebookApp.open_browser=False", ...(process.getuid?.() === 0 ? ["--allow-root"] : [])], { cwd: nbDir, env, stdio: ["ignore", "ignore", "pipe"] });
    let log = "";
    server.stderr!.on("data", (d) => (log += d));
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 100; i++) {
      if (server.exitCode !== null) throw new Error(`jupyter notebook exited (${server.exitCode}):\n${log}`);
      try {
        if ((await fetch(`${base}/api`)).ok) break;
      } catch {
        /* not up yet */
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    const { chromium } = await import("playwright-core");
    const ctx = await chromium.launchPersistentContext(join(work, "profile"), { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1300, height: 1000 } });
    try {
      const page = ctx.pages()[0] ?? (await ctx.newPage());
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      const foreign: string[] = [];
      page.on("request", (r) => {
        const u = r.url();
        if (!u.startsWith(base) && !u.startsWith("data:") && !u.startsWith("blob:") && !u.startsWith("about:") && !u.startsWith("ws://127.0.0.1")) foreign.push(u);
      });
      await page.goto(`${base}/notebooks/views-gallery.ipynb`, { waitUntil: "load", timeout: 60_000 });
      await page.waitForFunction((n) => document.querySelectorAll('.moescope-plot[data-moescope-rendered="1"]').length >= n, PLOT_KINDS.length, { timeout: 60_000 });
      const plots = await page.evaluate(() => Array.from(document.querySelectorAll(".moescope-view")).map((v) => {
        const el = v.querySelector(".moescope-plot") as (HTMLElement & { data?: unknown[] }) | null;
        return { kind: v.getAttribute("data-moescope-kind"), traces: el?.data?.length ?? 0, svg: !!el?.querySelector(".main-svg"), img: !!el?.querySelector("img") };
      }));
      for (const k of PLOT_KINDS) {
        const p = plots.find((x) => x.kind === k);
        expect(p, k).toBeDefined();
        expect(p!.traces, k).toBeGreaterThan(0);
        expect(p!.svg, k).toBe(true);
        expect(p!.img, `${k}: static image replaced`).toBe(false);
      }
      for (const k of HTML_KINDS) expect(plots.some((x) => x.kind === k), k).toBe(true);

      // Linked panels: clicking the third token selects it in the chart, the attention panel and the detail.
      const linked = page.locator('.moescope-view[data-moescope-kind="linked"]');
      await linked.scrollIntoViewIfNeeded();
      await linked.locator('.ms-tok[data-i="2"]').click();
      await page.waitForFunction(() => document.querySelector('.moescope-view[data-moescope-kind="linked"]')?.getAttribute("data-moescope-selected") === "2");
      const after = await linked.evaluate((root) => ({
        detail: root.querySelector(".ms-detail")?.textContent ?? "",
        attnTokens: root.querySelectorAll(".ms-attn .moescope-tok").length,
        shapeX: ((root.querySelector(".moescope-plot") as unknown as { layout?: { shapes?: { x0: number }[] } }).layout?.shapes?.[0]?.x0),
      }));
      expect(after.detail).toMatch(/^2 /);
      expect(after.attnTokens).toBe(3);
      expect(after.shapeX).toBeCloseTo(1.5);
      // A click on a row of the separate routing-grid output selects that token in the linked view (same run).
      await page.evaluate(() => {
        const el = document.querySelector('.moescope-view[data-moescope-kind="routing-grid"] .moescope-plot') as unknown as { emit(n: string, e: unknown): void };
        el.emit("plotly_click", { points: [{ x: 1, y: 5 }] });
      });
      await page.waitForFunction(() => document.querySelector('.moescope-view[data-moescope-kind="linked"]')?.getAttribute("data-moescope-selected") === "5");

      await page.screenshot({ path: join(artifacts, "notebook-top.png") });
      const views = page.locator(".moescope-view");
      const n = await views.count();
      for (let i = 0; i < n; i++) {
        const kind = await views.nth(i).getAttribute("data-moescope-kind");
        await views.nth(i).screenshot({ path: join(artifacts, `live-${String(i).padStart(2, "0")}-${kind}.png`) });
      }
      expect(errors).toEqual([]);
      // Classic Notebook itself may fetch MathJax from a CDN; the views fetched nothing.
      writeFileSync(join(artifacts, "notebook-foreign-requests.txt"), foreign.join("\n"));
      expect(foreign.filter((u) => !/mathjax/i.test(u))).toEqual([]);
    } finally {
      await ctx.close();
      server.kill("SIGTERM");
    }
    void log;
  }, 180_000);

  it("nbconvert's HTML export shows the charts with the network blocked", async () => {
    run(JUPYTER, ["nbconvert", "--to", "html", nbPath, "--output-dir", artifacts]);
    const file = join(artifacts, "views-gallery.html");
    const { chromium } = await import("playwright-core");
    const ctx = await chromium.launchPersistentContext(join(work, "profile2"), { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1300, height: 1000 } });
    try {
      const page = ctx.pages()[0] ?? (await ctx.newPage());
      const blocked: string[] = [];
      await ctx.route("**/*", (route) => {
        const u = route.request().url();
        if (u.startsWith("file:") || u.startsWith("data:") || u.startsWith("blob:")) return route.continue();
        blocked.push(u);
        return route.abort();
      });
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto("file://" + file, { waitUntil: "load", timeout: 60_000 });
      await page.waitForFunction((n) => document.querySelectorAll('.moescope-plot[data-moescope-rendered="1"]').length >= n, PLOT_KINDS.length, { timeout: 60_000 });
      const traces = await page.evaluate(() => Array.from(document.querySelectorAll(".moescope-plot")).map((el) => ((el as unknown as { data?: unknown[] }).data ?? []).length));
      expect(traces.every((t) => t > 0)).toBe(true);
      await page.screenshot({ path: join(artifacts, "export-top.png") });
      // nbconvert's own template asks for require.js and MathJax from CDNs; those were blocked and nothing of ours was.
      writeFileSync(join(artifacts, "export-blocked-requests.txt"), blocked.join("\n"));
      expect(blocked.filter((u) => !/require\.js|require\.min\.js|mathjax/i.test(u))).toEqual([]);
      expect(errors.filter((e) => !/require|define|MathJax/i.test(e))).toEqual([]);
    } finally {
      await ctx.close();
    }
  }, 120_000);

  it("the linked view's text panels work where plotly.js never arrives (static chart kept)", async () => {
    const model = await Model.load(join(ROOT, "tests/fixtures/golden/tiny-scout/model.gguf"));
    const trace = await model.run("The quick brown fox", { capture: ["routing", "blocks.*.attn.hook_pattern"] });
    mkdirSync(artifacts, { recursive: true });
    const file = join(artifacts, "linked-without-plotly.html");
    writeFileSync(file, `<!doctype html><html><body>${(await linkedView(trace, { layer: 1 })).html(false)}</body></html>`);
    const { chromium } = await import("playwright-core");
    const ctx = await chromium.launchPersistentContext(join(work, "profile3"), { executablePath: CHROMIUM, headless: true, args: ARGS });
    try {
      const page = ctx.pages()[0] ?? (await ctx.newPage());
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto("file://" + file);
      // The panels start on their own after a grace period for plotly.js (which never comes here).
      await page.waitForFunction(() => document.querySelector(".moescope-view")?.hasAttribute("data-moescope-selected"), undefined, { timeout: 10_000 });
      await page.locator('.ms-tok[data-i="1"]').click({ timeout: 10_000 });
      await page.waitForFunction(() => document.querySelector(".moescope-view")?.getAttribute("data-moescope-selected") === "1", undefined, { timeout: 10_000 });
      expect(await page.locator(".ms-attn .moescope-tok").count()).toBe(2);
      expect(await page.locator(".moescope-plot img").count()).toBe(1);
      expect(errors).toEqual([]);
    } finally {
      await ctx.close();
    }
  }, 60_000);
});
