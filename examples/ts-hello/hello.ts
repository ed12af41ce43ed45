// `ts-hello`: `hello` in TypeScript, typed by sdk/js/valbox.d.ts. esbuild
// strips the types before componentize-js builds the component.

import { http, Request, Response } from "valbox";

function greet(req: Request): Response {
  const name: string = req.query.get("name") ?? "world";
  return Response.text(`Hello, ${name}!`);
}

export const httpHandler = http(greet);
