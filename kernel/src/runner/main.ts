/**
 * `npm start`: executes the walkthrough notebooks through the moescope kernel, without Python, and
 * writes the executed notebooks plus one offline HTML report.
 *
 *   node dist/kernel/src/runner/main.js [--out DIR] [--in-place] [--no-report] [--allow-errors]
 *                                       [--timeout SECONDS] [NOTEBOOK.ipynb ...]
 *
 * Default notebooks: notebooks/01-*.ipynb … 07-*.ipynb of this package, in order; `--timeout` is per cell
 * (default 600 s; past it the kernel gets SIGINT and the cell fails); default output
 * folder: out/notebooks (report: DIR/report.html). `--in-place` writes each executed notebook over
 * its source (how notebooks/make-walkthroughs.js commits outputs). Progress goes to stderr
 * ("[1/7] 01-quickstart: cell 3/12"); the paths written go to stdout. Exit status: 0 when every
 * cell ran, 1 when a cell errored or a kernel failed, 2 for bad arguments.
 */
import * as fs from "fs";
import * as path from "path";
import { runNotebook, writeNotebook, RunResult } from "./notebook";
import { plotlySource, renderReport, ReportEntry } from "./report";

const ROOT = path.resolve(__dirname, "..", "..", "..", "..");

interface Args {
  out: string;
  inPlace: boolean;
  report: boolean;
  allowErrors: boolean;
  timeoutS: number;
  notebooks: string[];
}

function parseArgs(argv: string[]): Args {
  const a: Args = { out: path.join(ROOT, "out", "notebooks"), inPlace: false, report: true, allowErrors: false, timeoutS: 600, notebooks: [] };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${v} needs a value`);
      return argv[++i];
    };
    if (v === "--out") a.out = path.resolve(next());
    else if (v === "--in-place") a.inPlace = true;
    else if (v === "--no-report") a.report = false;
    else if (v === "--allow-errors") a.allowErrors = true;
    else if (v === "--timeout") a.timeoutS = Number(next());
    else if (v === "-h" || v === "--help") throw new Error("help");
    else if (v.startsWith("-")) throw new Error(`unknown option ${v}`);
    else a.notebooks.push(path.resolve(v));
  }
  if (!(a.timeoutS > 0)) throw new Error("--timeout must be a positive number of seconds");
  if (a.notebooks.length === 0) {
    const dir = path.join(ROOT, "notebooks");
    a.notebooks = fs.readdirSync(dir).filter((f) => /^0[1-7]-.*\.ipynb$/.test(f)).sort().map((f) => path.join(dir, f));
    if (a.notebooks.length === 0) throw new Error(`no walkthroughs (0[1-7]-*.ipynb) in ${dir}`);
  }
  return a;
}

export async function main(argv: string[]): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    const msg = (e as Error).message;
    process.stderr.write((msg === "help" ? "" : `moescope runner: ${msg}\n`) +
      "usage: npm start -- [--out DIR] [--in-place] [--no-report] [--allow-errors] [--timeout SECONDS] [NOTEBOOK.ipynb ...]\n");
    return msg === "help" ? 0 : 2;
  }
  const entries: ReportEntry[] = [];
  let failed = 0;
  const n = args.notebooks.length;
  const written: string[] = [];
  for (let k = 0; k < n; k++) {
    const src = args.notebooks[k];
    const name = path.basename(src, ".ipynb");
    const tag = `[${k + 1}/${n}] ${name}`;
    let result: RunResult;
    try {
      result = await runNotebook(src, {
        allowErrors: args.allowErrors,
        cellTimeoutMs: args.timeoutS * 1000,
        onCell: (i, total) => process.stderr.write(`${tag}: cell ${i}/${total}\n`),
      });
    } catch (e) {
      failed++;
      process.stderr.write(`${tag}: FAILED: ${(e as Error).message}\n`);
      continue;
    }
    const dest = args.inPlace ? src : path.join(args.out, path.basename(src));
    writeNotebook(dest, result.notebook);
    written.push(dest);
    if (result.errors.length) {
      failed++;
      for (const err of result.errors) process.stderr.write(`${tag}: ERROR in code cell ${err.cell}: ${err.ename}: ${err.evalue}\n`);
    }
    process.stderr.write(`${tag}: ${result.errors.length ? "failed" : "ok"} in ${result.seconds.toFixed(1)} s\n`);
    entries.push({ name, href: path.relative(args.out, dest).split(path.sep).join("/"), notebook: result.notebook, seconds: result.seconds, errors: result.errors.length });
  }
  if (args.report && entries.length) {
    const reportFile = path.join(args.out, "report.html");
    fs.mkdirSync(args.out, { recursive: true });
    fs.writeFileSync(reportFile, renderReport(entries, { plotlySource: plotlySource() }));
    written.push(reportFile);
  }
  for (const w of written) process.stdout.write(`${path.relative(process.cwd(), w) || w}\n`);
  if (args.report && entries.length) process.stdout.write(`open ${path.relative(process.cwd(), path.join(args.out, "report.html"))} in a browser (offline; plotly.js is inline)\n`);
  if (failed) process.stderr.write(`${failed} of ${n} notebook(s) failed\n`);
  return failed ? 1 : 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e) => {
    process.stderr.write(`moescope runner: ${e?.stack ?? e}\n`);
    process.exitCode = 1;
  });
}
