/**
 * One self-contained HTML page for a set of executed notebooks: a contents list, then each
 * notebook's markdown, code and outputs. Offline by construction: images are data URIs, and
 * plotly.js is inlined once in the page head (the copies that moescope views put in each
 * notebook's first output are removed, so a 7-notebook report carries the library once, not 7 times).
 * Rich outputs are chosen like a notebook frontend: text/html, then images, then text.
 */
import * as fs from "fs";
import type { Notebook, Output } from "./notebook";
import { sourceText } from "./notebook";

export interface ReportEntry {
  name: string;
  /** Relative link to the executed .ipynb, from the report's folder. */
  href: string;
  notebook: Notebook;
  seconds: number;
  errors: number;
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "");

/** The inlined library as moescope's views emit it (widgets/src/plotly-source.ts). */
const PLOTLY_TAG = /<script type="text\/javascript">\/\* plotly\.js [^*]*\(MIT\), inlined once by moescope \*\/[\s\S]*?<\/script>/g;
export function stripPlotly(html: string): string {
  return html.replace(PLOTLY_TAG, "");
}

function inline(md: string): string {
  const codes: string[] = [];
  let s = md.replace(/`([^`]+)`/g, (_, c) => `\u0000${codes.push(c) - 1}\u0000`);
  s = esc(s)
    .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
    .replace(/(^|[^*\w])\*([^*\s][^*]*)\*/g, "$1<em>$2</em>")
    .replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (_, t, u) => `<a href="${u}">${t}</a>`);
  return s.replace(/\u0000(\d+)\u0000/g, (_, i) => `<code>${esc(codes[Number(i)])}</code>`);
}

/** Enough Markdown for the walkthroughs: headings, paragraphs, lists, fenced code, tables, quotes. */
export function markdownToHtml(md: string): string {
  const lines = md.split("\n");
  const out: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (/^```/.test(line)) {
      const body: string[] = [];
      for (i++; i < lines.length && !/^```/.test(lines[i]); i++) body.push(lines[i]);
      i++;
      out.push(`<pre><code>${esc(body.join("\n"))}</code></pre>`);
    } else if (/^#{1,6}\s/.test(line)) {
      const level = line.match(/^#+/)![0].length;
      out.push(`<h${level + 1}>${inline(line.replace(/^#+\s*/, ""))}</h${level + 1}>`);
      i++;
    } else if (/^\s*([-*]|\d+\.)\s/.test(line)) {
      const ordered = /^\s*\d+\./.test(line);
      const items: string[] = [];
      while (i < lines.length && /^\s*([-*]|\d+\.)\s/.test(lines[i])) {
        let item = lines[i].replace(/^\s*([-*]|\d+\.)\s+/, "");
        for (i++; i < lines.length && /^\s{2,}\S/.test(lines[i]) && !/^\s*([-*]|\d+\.)\s/.test(lines[i]); i++) item += " " + lines[i].trim();
        items.push(`<li>${inline(item)}</li>`);
      }
      out.push(ordered ? `<ol>${items.join("")}</ol>` : `<ul>${items.join("")}</ul>`);
    } else if (/^\|/.test(line)) {
      const rows: string[][] = [];
      for (; i < lines.length && /^\|/.test(lines[i]); i++) {
        if (/^\|[\s:|-]+\|\s*$/.test(lines[i])) continue;
        rows.push(lines[i].replace(/^\||\|\s*$/g, "").split("|").map((c) => c.trim()));
      }
      const [head, ...body] = rows;
      out.push(`<table><tr>${head.map((c) => `<th>${inline(c)}</th>`).join("")}</tr>${body.map((r) => `<tr>${r.map((c) => `<td>${inline(c)}</td>`).join("")}</tr>`).join("")}</table>`);
    } else if (/^>\s?/.test(line)) {
      const q: string[] = [];
      for (; i < lines.length && /^>/.test(lines[i]); i++) q.push(lines[i].replace(/^>\s?/, ""));
      out.push(`<blockquote>${inline(q.join(" "))}</blockquote>`);
    } else if (line.trim() === "") {
      i++;
    } else {
      const p: string[] = [];
      for (; i < lines.length && lines[i].trim() !== "" && !/^(#{1,6}\s|```|\s*([-*]|\d+\.)\s|\||>)/.test(lines[i]); i++) p.push(lines[i]);
      out.push(`<p>${inline(p.join(" "))}</p>`);
    }
  }
  return out.join("\n");
}

const text = (v: unknown) => (Array.isArray(v) ? v.join("") : String(v ?? ""));

function outputHtml(o: Output): string {
  switch (o.output_type) {
    case "stream":
      return `<pre class="stream ${esc(o.name)}">${esc(stripAnsi(text(o.text)))}</pre>`;
    case "error":
      return `<pre class="error">${esc(stripAnsi(o.traceback.length ? o.traceback.join("\n") : `${o.ename}: ${o.evalue}`))}</pre>`;
    default: {
      const d = o.data;
      if (d["text/html"] !== undefined) return `<div class="html">${stripPlotly(text(d["text/html"]))}</div>`;
      if (d["image/png"] !== undefined) return `<img src="data:image/png;base64,${text(d["image/png"]).replace(/\s/g, "")}" style="max-width:100%"/>`;
      if (d["image/svg+xml"] !== undefined) return `<div class="svg">${text(d["image/svg+xml"])}</div>`;
      if (d["text/markdown"] !== undefined) return `<div class="md">${markdownToHtml(text(d["text/markdown"]))}</div>`;
      return `<pre>${esc(text(d["text/plain"]))}</pre>`;
    }
  }
}

const STYLE = `body{font-family:"DejaVu Sans",Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
pre{background:#f6f8fa;padding:6px 8px;overflow-x:auto;font-size:12px;margin:4px 0}pre.error{background:#fdecea}pre.stderr{background:#fff8e1}
.cell{margin:10px 0}.in{border-left:3px solid #9ab;padding-left:6px}.count{color:#789;font-size:11px}.out{margin-left:10px}
nav li{margin:2px 0}.bad{color:#b00}.ok{color:#070}h1.nb{border-top:2px solid #ccc;padding-top:1em;margin-top:2em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}code{background:#f2f2f2;padding:0 2px}`;

export function renderReport(entries: ReportEntry[], opts: { plotlySource?: string; title?: string } = {}): string {
  const title = opts.title ?? "moescope walkthroughs";
  const nav = entries.map((e, i) => {
    const status = e.errors ? `<span class="bad">${e.errors} error(s)</span>` : `<span class="ok">ok</span>`;
    return `<li><a href="#nb-${i}">${esc(e.name)}</a> — ${status}, ${e.seconds.toFixed(1)} s · <a href="${esc(e.href)}">.ipynb</a></li>`;
  });
  const sections = entries.map((e, i) => {
    const cells = e.notebook.cells.map((c) => {
      if (c.cell_type === "markdown") return `<div class="cell md">${markdownToHtml(sourceText(c.source))}</div>`;
      if (c.cell_type !== "code") return "";
      const outs = (c.outputs ?? []).map(outputHtml).join("\n");
      return `<div class="cell"><div class="count">In [${c.execution_count ?? " "}]:</div><pre class="in">${esc(sourceText(c.source))}</pre><div class="out">${outs}</div></div>`;
    });
    return `<section id="nb-${i}"><h1 class="nb">${esc(e.name)}</h1>\n${cells.join("\n")}</section>`;
  });
  // The library first, so each view's queued draw runs as soon as its own script does.
  const lib = opts.plotlySource ? `<script type="text/javascript">${opts.plotlySource.replace(/<\/script/gi, "<\\/script")}</script>
<script>(function(){var q=window.__moescopeQ;window.__moescopeQ={push:function(f){try{f()}catch(e){console.error(e)}}};if(q&&q.length)for(var i=0;i<q.length;i++)window.__moescopeQ.push(q[i]);})();</script>` : "";
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title><style>${STYLE}</style>${lib}</head>
<body><h1>${esc(title)}</h1><p>Executed ${new Date().toISOString()} through the moescope kernel. Everything on this page is inline: it works offline.</p>
<nav><ol>${nav.join("\n")}</ol></nav>
${sections.join("\n")}
</body></html>
`;
}

/** plotly.js from the package's own dependency, or undefined (the report then shows the static images). */
export function plotlySource(): string | undefined {
  try {
    return fs.readFileSync(require.resolve("plotly.js-dist-min/plotly.min.js"), "utf8");
  } catch {
    return undefined;
  }
}
