// `js-counter`: counts its visits in the blob `js-counter` (needs
// `blob:read` and `blob:write`). `updateJSON` retries on a concurrent
// write, so no visit is lost. Without a scope it answers 403 with the
// host's `denied: ...` message.

import { blob, http, Response, ValboxError } from "valbox";

export const httpHandler = http(() => {
  try {
    const count = blob.updateJSON("js-counter", (n) => (n ?? 0) + 1);
    return Response.json({ count });
  } catch (e) {
    if (e instanceof ValboxError) return Response.text(e.message, e.kind === "denied" ? 403 : 500);
    throw e;
  }
});
