"""`py-hello`: `hello` in Python. Answers "Hello, <name>!" from `?name=`
("world" without it). Built by scripts/build-vals (or `valbox build`)
with componentize-py and sdk/python/valbox.py."""

import valbox


def greet(req):
    return valbox.Response.text(f"Hello, {req.query.get('name', 'world')}!")


HttpHandler = valbox.http(greet)
