"""A receiver that verifies deliveries with the Standard Webhooks reference library (PyPI
`standardwebhooks`). Env: PORT, WEBHOOK_SECRET (the whsec_ secret). Prints one JSON line per
request: {event, id, verified}; answers 401 when verification fails."""

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

webhook = Webhook(os.environ["WEBHOOK_SECRET"])
# Requests are handled on threads; one line at a time keeps the output parseable.
print_lock = threading.Lock()


def report(line):
    with print_lock:
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            payload = webhook.verify(body, headers)
            verified = True
        except WebhookVerificationError:
            payload, verified = {}, False
        report({"event": headers.get("x-webhook-event"), "id": payload.get("id"), "verified": verified})
        self.send_response(200 if verified else 401)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"received":true}' if verified else b'{"error":"Invalid signature"}')

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
report({"listening": server.server_address[1]})
try:
    server.serve_forever()
except KeyboardInterrupt:
    sys.exit(0)
