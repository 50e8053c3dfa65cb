"""Runs ReferralLoop's documented Flask receiver (referralloop_flask_example.py) unchanged as a test
receiver. Flask comes from PyPI (infra/requirements-test.txt). Env: PORT. Prints
{"listening": port}, then one JSON line per request: {event_type, waitlist_id, data, timestamp,
status}, with what Flask's `request.json` parsed."""

import json
import logging
import os
import sys
import threading

# Stdout carries only the report lines; what the example prints goes to stderr.
report_stream = sys.stdout
sys.stdout = sys.stderr

from flask import request
from werkzeug.serving import make_server

import referralloop_flask_example as example

# Requests are handled on threads; one line at a time keeps the output parseable.
report_lock = threading.Lock()


def report(line):
    with report_lock:
        report_stream.write(json.dumps(line) + "\n")
        report_stream.flush()


@example.app.after_request
def report_request(response):
    payload = request.get_json(silent=True) or {}
    fields = ("event_type", "waitlist_id", "data", "timestamp")
    report({**{field: payload.get(field) for field in fields}, "status": response.status_code})
    return response


# The report lines say what arrived; werkzeug's request log would only repeat it on stderr.
logging.getLogger("werkzeug").setLevel(logging.WARNING)
# The example's `app.run(port=3000)` runs only as a script; a test receiver listens on PORT on
# 127.0.0.1.
server = make_server("127.0.0.1", int(os.environ["PORT"]), example.app, threaded=True)
report({"listening": server.server_port})
server.serve_forever()
