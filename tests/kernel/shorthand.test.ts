/**
 * Object shorthand properties that name an earlier cell's variable (a tslab converter gap).
 */
import { describe, expect, it } from "vitest";
import { expandShorthandProperties } from "../../kernel/src/interpreter/ts-interpreter";

describe("expandShorthandProperties", () => {
  it("expands shorthand properties and shorthand defaults, leaves everything else alone", () => {
    expect(expandShorthandProperties("JSON.stringify({ a, b: 2, c })")).toBe("JSON.stringify({ a: a, b: 2, c: c })");
    expect(expandShorthandProperties("({ a = 1 } = obj);")).toBe("({ a: a = 1 } = obj);");
    const untouched = "const { a, b } = obj; const s = '{ a }'; function f({ x }: any) { return x; }";
    expect(expandShorthandProperties(untouched)).toBe(untouched);
  });
});
