"""moto server for the test suite, handling one request at a time.

moto's own `moto_server` serves requests on threads, and its DynamoDB backend does not isolate
TransactWriteItems calls from each other, so two racing conditional transactions can both pass their
conditions (seen with the pending-cap race test). AWS runs transactions serializably; serving one
request at a time gives the tests the same isolation.

usage: python infra/moto_server.py HOST PORT
"""

import sys

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import MotoRequestHandler


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, app, threaded=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
