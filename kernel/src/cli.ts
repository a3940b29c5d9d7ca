/**
 * The kernel's subcommands of `moescope` (dispatched by bin/moescope.js): `kernel -f FILE` (what
 * Jupyter starts), `install [--user|--sys-prefix|--prefix P]` and `uninstall` (same flags).
 * Resolves to the process exit code.
 */
import { install, uninstall, Place } from "./kernelspec";

function usage(): number {
  process.stderr.write(
    "usage: moescope kernel -f CONNECTION_FILE\n" +
      "       moescope install [--user | --sys-prefix | --prefix PATH]   (default --user)\n" +
      "       moescope uninstall [--user | --sys-prefix | --prefix PATH]\n",
  );
  return 2;
}

function parsePlace(args: string[]): Place | undefined {
  let place: Place = { kind: "user" };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--user") place = { kind: "user" };
    else if (a === "--sys-prefix") place = { kind: "sys-prefix" };
    else if (a === "--prefix" && args[i + 1]) place = { kind: "prefix", prefix: args[++i] };
    else if (a.startsWith("--prefix=")) place = { kind: "prefix", prefix: a.slice("--prefix=".length) };
    else return undefined;
  }
  return place;
}

export async function main(command: string, args: string[]): Promise<number> {
  switch (command) {
    case "kernel": {
      const i = args.findIndex((a) => a === "-f" || a === "--connection-file");
      const file = i >= 0 ? args[i + 1] : args.find((a) => a.endsWith(".json"));
      if (!file) return usage();
      // Loaded lazily: install/uninstall must work without zeromq or the TypeScript compiler.
      const { launch } = await import("./launcher");
      return launch(args, async () => (await import("./kernel")).runKernel(file));
    }
    case "install": {
      const place = parsePlace(args);
      if (!place) return usage();
      const dir = install(place);
      process.stdout.write(`installed kernelspec moescope ("moescope (TypeScript)") in ${dir}\n`);
      return 0;
    }
    case "uninstall": {
      const place = parsePlace(args);
      if (!place) return usage();
      const dir = uninstall(place);
      process.stdout.write(dir ? `removed kernelspec moescope from ${dir}\n` : "kernelspec moescope was not installed there\n");
      return 0;
    }
    default:
      return usage();
  }
}
