// `js-tick`: a cron val in JavaScript that counts its runs in the blob
// `js-ticks` (needs `blob:read` and `blob:write`); a denied scope throws,
// which fails the run.

import { blob, scheduled } from "valbox";

export const cron = scheduled(({ schedule, due }) => {
  const ticks = blob.updateJSON("js-ticks", (n) => (n ?? 0) + 1);
  console.log(`tick ${ticks} (${schedule}, due at ${due} ms)`);
});
