"""moto's S3 server (PyPI moto[server]) for the tests, one request at a time.

moto checks a PutObject's If-Match / If-None-Match and then stores the
object with nothing held in between, and its own server answers requests
on many threads: two conditional writes over one version, racing, can both
land, which S3 never allows. Handling each request whole before the next
makes moto's conditional writes atomic, as S3's are.

Usage: python3 tests/moto_server.py HOST PORT
"""

import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

moto = DomainDispatcherApplication(create_backend_app)
one_at_a_time = threading.Lock()


def serialised(environ, start_response):
    with one_at_a_time:
        # The body is produced inside the lock, where moto does its work.
        return list(moto(environ, start_response))


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    run_simple(
        host,
        port,
        serialised,
        threaded=True,
        request_handler=MotoRequestHandler,
    )
