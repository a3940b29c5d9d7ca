/**
 * plotlyInit(): an explicit, visible output that ships plotly.js to the page, for when the output
 * that carried it was cleared or a frontend skipped it (see plotly-source.ts). Views do this by
 * themselves the first time, so most notebooks never call it.
 */
import { Displayable, MIMEBUNDLE } from "../../engine/src/display";
import { markPlotlyShipped, PLOTLY_VERSION, plotlyScriptTag } from "./plotly-source";
export { resetPlotlyShipped } from "./plotly-source";

export function plotlyInit(): Displayable {
  return {
    // Marked shipped when shown, so the views after it do not carry the library again.
    [MIMEBUNDLE]: () => {
      markPlotlyShipped();
      return {
        data: {
          "text/html": plotlyScriptTag() + `<div style="color:#666;font-size:11px">plotly.js ${PLOTLY_VERSION} loaded for moescope views (inline, no network).</div>`,
          "text/plain": `plotly.js ${PLOTLY_VERSION} for moescope views (HTML frontends only)`,
        },
        metadata: {},
      };
    },
  };
}
