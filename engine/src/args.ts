/**
 * A small command-line parser shared by the subcommands: `--name value`, `--flag`, repeatable options.
 * Unknown options are errors (a typo must not silently change a trace).
 */
export interface OptionSpec {
  [name: string]: { type: "string" | "number" | "boolean"; repeat?: boolean; help: string };
}

export type Parsed = Record<string, string | number | boolean | Array<string | number> | undefined>;

export function parseArgs(command: string, args: string[], spec: OptionSpec): Parsed {
  const out: Parsed = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith("--")) throw new Error(`${command}: unexpected argument "${a}"\n${usage(command, spec)}`);
    const name = a.slice(2);
    const s = spec[name];
    if (!s) throw new Error(`${command}: unknown option --${name}\n${usage(command, spec)}`);
    let value: string | number | boolean = true;
    if (s.type !== "boolean") {
      if (i + 1 >= args.length) throw new Error(`${command}: --${name} needs a value`);
      const raw = args[++i];
      if (s.type === "number") {
        value = Number(raw);
        if (!Number.isFinite(value)) throw new Error(`${command}: --${name} expects a number, got "${raw}"`);
      } else value = raw;
    }
    if (s.repeat) ((out[name] as Array<string | number>) ??= []).push(value as string | number);
    else out[name] = value;
  }
  return out;
}

export function usage(command: string, spec: OptionSpec): string {
  return `usage: moescope ${command} ` + Object.entries(spec).map(([n, s]) => `[--${n}${s.type === "boolean" ? "" : " " + s.type.toUpperCase()}]`).join(" ") +
    "\n" + Object.entries(spec).map(([n, s]) => `  --${n.padEnd(16)} ${s.help}`).join("\n");
}
