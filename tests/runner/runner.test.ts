/**
 * The notebook runner (kernel/src/runner, `npm start`): runs tests/runner/fixtures/small.ipynb
 * through a real moescope kernel over zeromq and checks the executed notebook as nbformat 4
 * (streams merged, a display updated from a later cell, clear_output(wait) honoured, execution
 * counts, the error captured and the cells after it left unrun), the HTML report, stderr progress,
 * the exit status, and --timeout (SIGINT to the kernel, its KeyboardInterrupt recorded). Needs the build
 * (dist/), as `npm test` makes it.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { markdownToHtml, stripPlotly } from "../../kernel/src/runner/report";
import { OutputCollector } from "../../kernel/src/runner/notebook";

const ROOT = path.join(__dirname, "..", "..");
const MAIN = path.join(ROOT, "dist", "kernel", "src", "runner", "main.js");
const FIXTURE = path.join(__dirname, "fixtures", "small.ipynb");
const joined = (v: unknown) => (Array.isArray(v) ? v.join("") : String(v));

describe("notebook runner", () => {
  it("executes a notebook through the kernel, writes nbformat 4 and a report, exits 1 on the error cell", () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "moescope-runner-test-"));
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [MAIN, "--out", out, FIXTURE], { encoding: "utf8", timeout: 60_000 });
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toContain("[1/1] small: cell 1/5");
    expect(r.stderr).toMatch(/ERROR in code cell 4: Error: boom/);
    expect(r.stdout).toContain("report.html");

    const nb = JSON.parse(fs.readFileSync(path.join(out, "small.ipynb"), "utf8"));
    expect(nb.nbformat).toBe(4);
    expect(nb.metadata.language_info.name).toBe("typescript");
    const code = nb.cells.filter((c: any) => c.cell_type === "code");
    expect(code.map((c: any) => c.execution_count)).toEqual([1, 2, 3, 4, null]);

    // Cell 1: two console.log lines merged into one stream; the display updated by cell 2; the result.
    const [s, d, res] = code[0].outputs;
    expect(s).toMatchObject({ output_type: "stream", name: "stdout" });
    expect(joined(s.text)).toBe("hello\nworld\n");
    expect(d.output_type).toBe("display_data");
    expect(joined(d.data["text/html"])).toBe("<b>updated</b>");
    expect(d.transient).toBeUndefined();
    expect(res).toMatchObject({ output_type: "execute_result", execution_count: 1 });
    expect(joined(res.data["text/plain"])).toBe("2");

    expect(code[1].outputs).toHaveLength(1);
    expect(code[1].outputs[0]).toMatchObject({ output_type: "stream", name: "stderr" });
    // clear_output(wait): "gone" is replaced by the next output.
    expect(code[2].outputs.map((o: any) => joined(o.text))).toEqual(["kept\n"]);

    expect(code[3].outputs).toHaveLength(1);
    expect(code[3].outputs[0]).toMatchObject({ output_type: "error", ename: "Error", evalue: "boom" });
    expect(code[3].outputs[0].traceback.length).toBeGreaterThan(0);
    expect(code[4].outputs).toEqual([]);

    const html = fs.readFileSync(path.join(out, "report.html"), "utf8");
    expect(html).toContain("<h1 class=\"nb\">small</h1>");
    expect(html).toContain("<b>updated</b>");
    expect(html).toContain("Error: boom");
    expect(html).toContain('href="small.ipynb"');
    expect(html).not.toMatch(/<script[^>]+src=/); // offline: nothing fetched
    fs.rmSync(out, { recursive: true, force: true });
  });

  it("--allow-errors runs the cells after an error; --in-place rewrites the source", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "moescope-runner-test-"));
    const nbFile = path.join(dir, "small.ipynb");
    fs.copyFileSync(FIXTURE, nbFile);
    const r = spawnSync(process.execPath, [MAIN, "--in-place", "--no-report", "--allow-errors", "--out", dir, nbFile], { encoding: "utf8", timeout: 60_000 });
    expect(r.status).toBe(1);
    const nb = JSON.parse(fs.readFileSync(nbFile, "utf8"));
    const last = nb.cells[nb.cells.length - 1];
    expect(last.execution_count).toBe(5);
    expect(joined(last.outputs[0].text)).toBe("never runs\n");
    expect(fs.existsSync(path.join(dir, "report.html"))).toBe(false);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("--timeout interrupts a cell that runs too long and records the kernel's KeyboardInterrupt", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "moescope-runner-test-"));
    const nbFile = path.join(dir, "slow.ipynb");
    const cell = (id: string, src: string) => ({ cell_type: "code", execution_count: null, id, metadata: {}, outputs: [], source: [src] });
    fs.writeFileSync(nbFile, JSON.stringify({ cells: [cell("a", "await new Promise((r) => setTimeout(r, 30000));"), cell("b", "1")], metadata: {}, nbformat: 4, nbformat_minor: 5 }));
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [MAIN, "--timeout", "2", "--no-report", "--out", dir, nbFile], { encoding: "utf8", timeout: 60_000 });
    expect(Date.now() - t0).toBeLessThan(25_000);
    expect(r.status).toBe(1);
    const nb = JSON.parse(fs.readFileSync(path.join(dir, "slow.ipynb"), "utf8"));
    expect(nb.cells[0].outputs.find((o: any) => o.output_type === "error")).toMatchObject({ ename: "KeyboardInterrupt" });
    expect(nb.cells[1].execution_count).toBeNull();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("collects outputs like a frontend: clear without wait, updates across cells", () => {
    const displays = new Map();
    const msg = (msg_type: string, content: any) => ({ header: { msg_type }, content } as any);
    const a = new OutputCollector(displays);
    a.handle(msg("display_data", { data: { "text/plain": "v1" }, metadata: {}, transient: { display_id: "x" } }));
    const b = new OutputCollector(displays);
    b.handle(msg("stream", { name: "stdout", text: "a" }));
    b.handle(msg("clear_output", { wait: false }));
    b.handle(msg("stream", { name: "stdout", text: "b" }));
    b.handle(msg("update_display_data", { data: { "text/plain": "v2" }, metadata: {}, transient: { display_id: "x" } }));
    expect((a.outputs[0] as any).data["text/plain"]).toBe("v2");
    expect(b.outputs).toEqual([{ output_type: "stream", name: "stdout", text: "b" }]);
  });

  it("report helpers: markdown subset, plotly copies removed", () => {
    expect(markdownToHtml("## Title\nSome `code` and **bold**.\n\n- one\n- two")).toBe(
      "<h3>Title</h3>\n<p>Some <code>code</code> and <strong>bold</strong>.</p>\n<ul><li>one</li><li>two</li></ul>");
    expect(stripPlotly('a<script type="text/javascript">/* plotly.js 4.1.2 (MIT), inlined once by moescope */\nvar x;</script>b')).toBe("ab");
  });
});
