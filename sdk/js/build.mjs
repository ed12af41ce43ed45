// Build a JavaScript or TypeScript val into a WebAssembly component:
//
//   node build.mjs SOURCE OUT.wasm [--kind http|script|cron|email] [--wit DIR]
//
// esbuild bundles SOURCE (TypeScript is stripped of its types) with the
// `valbox` helper module; componentize-js then embeds the bundle in its
// JavaScript engine, against the platform's WIT world for the kind.

import { build } from "esbuild";
import { componentize } from "@bytecodealliance/componentize-js";
import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    kind: { type: "string", default: "http" },
    wit: { type: "string", default: join(here, "..", "..", "wit") },
  },
});
if (positionals.length !== 2 || !["http", "script", "cron", "email"].includes(values.kind)) {
  console.error("usage: node build.mjs SOURCE OUT.wasm [--kind http|script|cron|email] [--wit DIR]");
  process.exit(2);
}
const [source, out] = positionals.map((p) => resolve(p));

const work = await mkdtemp(join(tmpdir(), "valbox-js-"));
try {
  const bundle = join(work, "val.js");
  await build({
    entryPoints: [source],
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    outfile: bundle,
    alias: { valbox: join(here, "valbox.js") },
    external: ["valbox:platform/*"],
    logLevel: "warning",
  });
  const { component } = await componentize({
    sourcePath: bundle,
    witPath: resolve(values.wit),
    worldName: `${values.kind}-val`,
    // Valbox serves no wasi:http; clocks, random and stdio (the val's log)
    // stay.
    disableFeatures: ["http", "fetch-event"],
  });
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, component);
  console.log(`${out}: ${component.length} bytes`);
} finally {
  await rm(work, { recursive: true, force: true });
}
