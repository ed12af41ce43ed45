// Build a JavaScript or TypeScript val into a WebAssembly component:
//
//   node build.mjs SOURCE OUT.wasm [--kind http|script|cron|email] [--wit DIR]
//                  [--weval WEVAL]
//
// esbuild bundles SOURCE (TypeScript is stripped of its types) with the
// `valbox` helper module; componentize-js then embeds the bundle in its
// JavaScript engine, against the platform's WIT world for the kind. With
// --weval (the path of a weval 0.5 binary), the engine's interpreter is
// specialised to the bundle ahead of time (componentize-js's AOT mode).

import { build } from "esbuild";
import { componentize } from "@bytecodealliance/componentize-js";
import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { existsSync } from "node:fs";
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
    weval: { type: "string" },
  },
});
if (positionals.length !== 2 || !["http", "script", "cron", "email"].includes(values.kind)) {
  console.error(
    "usage: node build.mjs SOURCE OUT.wasm [--kind http|script|cron|email] [--wit DIR] [--weval WEVAL]",
  );
  process.exit(2);
}
// componentize-js downloads a weval when the one it is given is missing:
// never let it reach out.
if (values.weval !== undefined && !existsSync(values.weval)) {
  console.error(`${values.weval}: no such weval binary (cargo install weval --version 0.5.0 --locked)`);
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
    enableAot: values.weval !== undefined,
    wevalBin: values.weval,
  });
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, component);
  console.log(`${out}: ${component.length} bytes`);
} finally {
  await rm(work, { recursive: true, force: true });
}
