/**
 * plotly.js for HTML outputs, shipped inline (never from a CDN: bertviz and CircuitsVis break where
 * CDNs are blocked) and only once per page. "Once per page" is tracked per kernel process: the first
 * plotly view after the kernel starts carries the library; later views find `window.Plotly`.
 *
 * Each view's script queues its draw function on `window.__moescopeQ`; the library's script, when it
 * runs, replaces the queue with one that draws at once and drains what is waiting. So order does not
 * matter, and a view whose library never arrives (an untrusted notebook, a frontend that chose the
 * plotly MIME type for the first output) keeps its static image. `plotlyInit()` re-ships the library
 * explicitly, e.g. after clearing the output that held it.
 */
import { readFileSync } from "fs";

let source: string | undefined;
let shipped = false;

function librarySource(): string {
  if (source === undefined) {
    const file = require.resolve("plotly.js-dist-min/plotly.min.js");
    // "</script" cannot appear inside an inline script; plotly.min.js 4.1.2 has none, but be safe.
    source = readFileSync(file, "utf8").replace(/<\/script/gi, "<\\/script");
  }
  return source;
}

export const PLOTLY_VERSION: string = (() => {
  try {
    return (require("plotly.js-dist-min/package.json") as { version: string }).version;
  } catch {
    return "unknown";
  }
})();

const DRAIN = `(function(){var q=window.__moescopeQ;window.__moescopeQ={push:function(f){try{f()}catch(e){console.error(e)}}};if(q&&q.length)for(var i=0;i<q.length;i++)window.__moescopeQ.push(q[i]);})();`;

/** The library as one <script> element (about 4.8 MB), plus the queue drain. */
export function plotlyScriptTag(): string {
  return `<script type="text/javascript">/* plotly.js ${PLOTLY_VERSION} (MIT), inlined once by moescope */\n${librarySource()}\n${DRAIN}</script>`;
}

/** The library tag if this kernel has not shipped it yet (and marks it shipped), else "". */
export function plotlyOnce(): string {
  if (shipped) return "";
  shipped = true;
  return plotlyScriptTag();
}

/** Forget that the library was shipped: the next view carries it again. */
export function resetPlotlyShipped(): void {
  shipped = false;
}
export function markPlotlyShipped(): void {
  shipped = true;
}
export function plotlyShipped(): boolean {
  return shipped;
}
