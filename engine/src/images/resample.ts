/**
 * Antialiased bilinear resampling of 8-bit RGB, bit-exact with Pillow's `Image.resize(BILINEAR)`
 * (ImagingResample: triangle filter widened by the shrink factor, 22-bit fixed-point taps, horizontal
 * pass then vertical pass, each rounded to uint8). This is the "bilinear" of the reference (spec §3.1
 * step 5: META uses PIL; HF's torchvision uint8 antialias path is a port of the same algorithm). sharp
 * decodes and encodes; its own resize kernels would put a libvips filter where the reference has this one.
 * `resizeBilinearF64` is the same filter in float64 with one final round-half-to-even, which is how
 * the float64 goldens (tests/fixtures/golden, tiny-vision) made their thumbnail; the two differ by at
 * most one grey level, on exact ties.
 */

const PRECISION_BITS = 32 - 8 - 2;

interface Taps {
  bounds: Int32Array; // [out, 2]: first input index, count
  k: Int32Array;      // [out, ksize] fixed-point weights
  ksize: number;
}

function precompute(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 1.0 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const k = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1.0 / filterscale;
    // C's (int) truncates toward zero.
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      let t = Math.abs((x + xmin - center + 0.5) * ss);
      const v = t < 1 ? 1 - t : 0;
      w[x] = v;
      ww += v;
    }
    for (let x = 0; x < ksize; x++) {
      const v = x < xmax && ww !== 0 ? w[x] / ww : 0;
      k[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * (1 << PRECISION_BITS)) : Math.trunc(0.5 + v * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, k, ksize };
}

function clip8(ss: number): number {
  // ss is the fixed-point sum (fits a double exactly: < 2^53).
  if (ss >= 256 * 2 ** PRECISION_BITS) return 255;
  if (ss <= 0) return 0;
  return Math.floor(ss / 2 ** PRECISION_BITS);
}

/** Resizes interleaved 8-bit pixels [h, w, channels] to [outH, outW, channels]. */
export function resizeBilinear(src: Uint8Array, h: number, w: number, channels: number, outH: number, outW: number): Uint8Array {
  let cur = src, curW = w;
  if (outW !== w) {
    const t = precompute(w, outW);
    const out = new Uint8Array(h * outW * channels);
    for (let y = 0; y < h; y++)
      for (let xx = 0; xx < outW; xx++) {
        const xmin = t.bounds[xx * 2], n = t.bounds[xx * 2 + 1];
        for (let c = 0; c < channels; c++) {
          let ss = 1 << (PRECISION_BITS - 1);
          for (let x = 0; x < n; x++) ss += cur[(y * w + xmin + x) * channels + c] * t.k[xx * t.ksize + x];
          out[(y * outW + xx) * channels + c] = clip8(ss);
        }
      }
    cur = out;
    curW = outW;
  }
  if (outH !== h) {
    const t = precompute(h, outH);
    const out = new Uint8Array(outH * curW * channels);
    for (let yy = 0; yy < outH; yy++) {
      const ymin = t.bounds[yy * 2], n = t.bounds[yy * 2 + 1];
      for (let x = 0; x < curW * channels; x++) {
        let ss = 1 << (PRECISION_BITS - 1);
        for (let y = 0; y < n; y++) ss += cur[(ymin + y) * curW * channels + x] * t.k[yy * t.ksize + y];
        out[yy * curW * channels + x] = clip8(ss);
      }
    }
    cur = out;
  }
  return cur === src ? src.slice() : cur;
}

/** The same taps in float64 (no fixed point), both passes kept in float, one round-half-to-even at the end. */
export function resizeBilinearF64(src: Uint8Array, h: number, w: number, channels: number, outH: number, outW: number): Uint8Array {
  const taps = (inSize: number, outSize: number) => {
    const scale = inSize / outSize, fs = Math.max(scale, 1);
    const out: Array<{ first: number; w: Float64Array }> = [];
    for (let xx = 0; xx < outSize; xx++) {
      const center = (xx + 0.5) * scale;
      const first = Math.max(0, Math.trunc(center - fs + 0.5));
      const last = Math.min(inSize, Math.trunc(center + fs + 0.5));
      const wt = new Float64Array(Math.max(0, last - first));
      let ww = 0;
      for (let x = first; x < last; x++) {
        const t = Math.abs((x - center + 0.5) / fs);
        ww += wt[x - first] = t < 1 ? 1 - t : 0;
      }
      if (ww !== 0) for (let i = 0; i < wt.length; i++) wt[i] /= ww;
      out.push({ first, w: wt });
    }
    return out;
  };
  let cur: Float64Array = Float64Array.from(src);
  if (outW !== w) {
    const t = taps(w, outW);
    const next = new Float64Array(h * outW * channels);
    for (let y = 0; y < h; y++)
      for (let xx = 0; xx < outW; xx++)
        for (let c = 0; c < channels; c++) {
          let s = 0;
          for (let k = 0; k < t[xx].w.length; k++) s += cur[(y * w + t[xx].first + k) * channels + c] * t[xx].w[k];
          next[(y * outW + xx) * channels + c] = s;
        }
    cur = next;
  }
  const rowLen = outW * channels;
  if (outH !== h) {
    const t = taps(h, outH);
    const next = new Float64Array(outH * rowLen);
    for (let yy = 0; yy < outH; yy++)
      for (let x = 0; x < rowLen; x++) {
        let s = 0;
        for (let k = 0; k < t[yy].w.length; k++) s += cur[(t[yy].first + k) * rowLen + x] * t[yy].w[k];
        next[yy * rowLen + x] = s;
      }
    cur = next;
  }
  const out = new Uint8Array(cur.length);
  for (let i = 0; i < cur.length; i++) {
    const v = cur[i], f = Math.floor(v), d = v - f;
    const r = d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
    out[i] = r < 0 ? 0 : r > 255 ? 255 : r;
  }
  return out;
}
