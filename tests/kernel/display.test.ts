// The display API (engine/src/display.ts) seen from the kernel's side of setFrontend/commHost.
import { afterEach, describe, expect, it, vi } from "vitest";
import { progress, bundle, commHost, display, MIMEBUNDLE, openComm, registerCommTarget, setFrontend, toMimeBundle, clearOutput } from "../../engine/src/display";

function recorder() {
  const calls: any[] = [];
  setFrontend({
    display: (b, o) => calls.push(["display", b, o]),
    clearOutput: (w) => calls.push(["clear", w]),
    commOpen: (id, target, data, md, bufs) => calls.push(["open", id, target, data, bufs]),
    commMsg: (id, data, md, bufs) => calls.push(["msg", id, data, bufs]),
    commClose: (id, data) => calls.push(["close", id, data]),
  });
  return calls;
}
afterEach(() => setFrontend(undefined));

describe("toMimeBundle", () => {
  it("uses the MIMEBUNDLE protocol, Deno's Jupyter.display, strings and inspect", () => {
    const fig = { [MIMEBUNDLE]: () => ({ data: { "text/html": "<b/>" }, metadata: { "text/html": { isolated: true } } }) };
    expect(toMimeBundle(fig)).toEqual({ data: { "text/html": "<b/>" }, metadata: { "text/html": { isolated: true } } });
    expect(toMimeBundle({ [Symbol.for("Jupyter.display")]: () => ({ "text/markdown": "*x*" }) }).data).toEqual({ "text/markdown": "*x*" });
    expect(toMimeBundle("plain").data).toEqual({ "text/plain": "plain" });
    expect(toMimeBundle({ a: [1, 2] }).data).toEqual({ "text/plain": "{ a: [ 1, 2 ] }" });
    expect(() => toMimeBundle({ [MIMEBUNDLE]: () => 3 })).toThrow(TypeError);
  });
});

describe("display", () => {
  it("sends bundles with a display id, and updates in place", () => {
    const calls = recorder();
    const h = display(bundle({ "text/html": "<i>a</i>", "text/plain": "a" }), { metadata: { extra: 1 } });
    h.update("b");
    display.html("<p/>", { displayId: "fixed" });
    clearOutput({ wait: true });
    expect(calls[0][1]).toEqual({ data: { "text/html": "<i>a</i>", "text/plain": "a" }, metadata: { extra: 1 } });
    expect(calls[0][2]).toEqual({ displayId: h.displayId, update: false });
    expect(calls[1][2]).toEqual({ displayId: h.displayId, update: true });
    expect(calls[2][2].displayId).toBe("fixed");
    expect(calls[3]).toEqual(["clear", true]);
  });
  it("prints text/plain outside a kernel", () => {
    const spy = vi.spyOn(process.stdout, "write").mockImplementation(() => true);
    display("hello");
    expect(spy).toHaveBeenCalledWith("hello\n");
    spy.mockRestore();
  });
});

describe("progress", () => {
  it("updates one display in place, throttled, and finishes with a final draw", () => {
    const calls = recorder();
    const p = progress(10, { unit: "tokens", minIntervalMs: 1e9 });
    for (let i = 0; i < 10; i++) p.tick();
    p.done();
    expect(calls).toHaveLength(3); // first draw, one throttled update (the first tick), done
    expect(calls.every((c) => c[2].displayId === calls[0][2].displayId)).toBe(true);
    expect(calls.at(-1)[1].data["text/plain"]).toMatch(/^10\/10 tokens, .* tokens\/s, .* \(done\)$/);
  });
});

describe("comms", () => {
  it("routes frontend-opened comms to targets and replies with binary buffers", () => {
    const calls = recorder();
    registerCommTarget("echo", (comm) => comm.onMsg((m) => comm.send({ got: m.data }, m.buffers)));
    expect(commHost.open("c1", "echo", { data: {}, metadata: {}, buffers: [] })).toBe(true);
    expect(commHost.open("c2", "missing", { data: {}, metadata: {}, buffers: [] })).toBe(false);
    commHost.msg("c1", { data: { x: 1 }, metadata: {}, buffers: [new Uint8Array([1, 2])] });
    expect(calls.at(-1)).toEqual(["msg", "c1", { got: { x: 1 } }, [new Uint8Array([1, 2])]]);
    expect(commHost.list("echo")).toEqual({ c1: { target_name: "echo" } });
    commHost.close("c1", { data: {}, metadata: {}, buffers: [] });
    expect(commHost.list()).toEqual({});
  });
  it("opens comms from the kernel side", () => {
    const calls = recorder();
    const c = openComm("viewer", { a: 1 }, [new Uint8Array([3])]);
    expect(calls[0]).toEqual(["open", c.commId, "viewer", { a: 1 }, [new Uint8Array([3])]]);
    c.close();
    expect(() => c.send({})).toThrow(/closed/);
  });
});
