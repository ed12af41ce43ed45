"""`py-tick`: a cron val in Python that counts its runs in the blob
`py-ticks` (needs `blob:read` and `blob:write`); a denied scope raises,
which fails the run."""

import valbox


def tick(event):
    ticks = valbox.blob.update_json("py-ticks", lambda n: (n or 0) + 1)
    print(f"tick {ticks} ({event.schedule}, due at {event.due} ms)")


Cron = valbox.cron(tick)
