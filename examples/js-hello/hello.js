// `js-hello`: `hello` in JavaScript. Answers "Hello, <name>!" from
// `?name=` ("world" without it). Built by scripts/build-vals (or
// `valbox build`) with sdk/js/build.mjs.

import { http, Response } from "valbox";

export const httpHandler = http((req) => Response.text(`Hello, ${req.query.get("name") ?? "world"}!`));
