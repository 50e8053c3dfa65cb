"""The dashboard and the widget in a real headless Chromium, against a real refwire-local.

Run by scripts/test.sh after the build:  .venv/bin/python -m unittest tests/browser/test_dashboard.py
Playwright drives the system's Chromium (Debian's `chromium` package; REFWIRE_CHROMIUM overrides the
path), since Playwright cannot download its own browsers here. REFWIRE_LOCAL_BIN names the binary
(default target/debug/refwire-local). With REFWIRE_SCREENSHOTS=<dir> the main pages are saved there
as PNG files (docs/screenshots is made that way: scripts/screenshots.sh).
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from playwright.sync_api import expect, sync_playwright


ROOT = Path(__file__).resolve().parents[2]
BINARY = os.environ.get("REFWIRE_LOCAL_BIN") or str(ROOT / "target" / "debug" / "refwire-local")
CHROMIUM = os.environ.get("REFWIRE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = os.environ.get("REFWIRE_SCREENSHOTS")
WAIT_MS = 15_000
expect.set_options(timeout=WAIT_MS)


class RefwireLocal:
    """refwire-local on a free port with a fresh data file; its output is kept to check for keys."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory()
        self.process = subprocess.Popen(
            [BINARY, "--port", "0", "--data-file", str(Path(self.dir.name) / "refwire.db"), "--allow-loopback-http"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.startup = []
        while not any("operator key:" in line for line in self.startup):
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError("refwire-local exited:\n" + "".join(self.startup))
            self.startup.append(line)
        text = "".join(self.startup)
        self.url = re.search(r"listening on (http://\S+)", text).group(1)
        self.secret_key = re.search(r"secret key:\s+(\S+)", text).group(1)
        self.publishable_key = re.search(r"publishable key:\s+(\S+)", text).group(1)
        self.later_output = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.process.stdout:
            self.later_output.append(line)

    def api(self, method, path, body=None, key=None):
        request = urllib.request.Request(
            self.url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {key or self.secret_key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request) as response:
                text = response.read()
                return response.status, json.loads(text) if text else None
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        self.dir.cleanup()


class Receiver:
    """A webhook receiver on 127.0.0.1 that answers 200 and records what it got."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count):
        deadline = time.monotonic() + WAIT_MS / 1000
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return len(self.received)


class ShopSite:
    """Another origin (http://localhost:<port>, where the API is http://127.0.0.1:<port>) with a plain
    HTML page that embeds the widget, as a customer's site would."""

    def __init__(self, refwire_url):
        pages = self.pages = {}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = pages.get(self.path.split("?")[0], "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://localhost:{self.server.server_port}"
        self.refwire_url = refwire_url
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add_page(self, path, attributes):
        data = " ".join(f'data-{name}="{value}"' for name, value in attributes.items())
        self.pages[path] = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Shop</title></head><body>"
            "<h1>Example shop</h1><div id='refwire-widget'></div>"
            f"<script src='{self.refwire_url}/refwire.js' {data}></script></body></html>"
        )
        return self.origin + path


def screenshot(page, name):
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


class DashboardInChromium(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not CHROMIUM:
            raise RuntimeError("no Chromium: install Debian's chromium package (scripts/test.sh does) or set REFWIRE_CHROMIUM")
        cls.refwire = RefwireLocal()
        cls.receiver = Receiver()
        cls.shop = ShopSite(cls.refwire.url)
        cls.playwright = sync_playwright().start()
        cls.browser = cls.playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])

    @classmethod
    def tearDownClass(cls):
        cls.browser.close()
        cls.playwright.stop()
        cls.receiver.server.shutdown()
        cls.shop.server.shutdown()
        cls.refwire.stop()

    def open_page(self):
        """A fresh browser context (no cookies) whose console errors are collected."""
        context = self.browser.new_context(viewport={"width": 1280, "height": 900})
        self.addCleanup(context.close)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        self.console_errors = []
        page.on("console", lambda message: message.type == "error" and self.console_errors.append(message.text))
        page.on("pageerror", lambda error: self.console_errors.append(f"uncaught: {error}"))
        return page

    def sign_in(self, page):
        page.goto(self.refwire.url + "/dashboard/")
        page.fill("#key", self.refwire.secret_key)
        page.click("button[type=submit]")
        expect(page.locator("main h1")).to_have_text("Overview")

    def assert_no_console_errors(self, expected=()):
        unexpected = [text for text in self.console_errors if not any(part in text for part in expected)]
        self.assertEqual(unexpected, [])

    def test_sign_in_referrals_webhooks_settings_and_sign_out(self):
        refwire = self.refwire
        for user in ["ada", "grace", "linus"]:
            status, created = refwire.api("POST", "/v1/api/referral/create", {"user_id": user, "user_name": user.title()})
            self.assertEqual(status, 201)
        refwire.api("POST", "/v1/api/referral/milestone", {"referral_code": created["referral_code"], "milestone": "signed_up", "referred_user_id": "new_user"})
        page = self.open_page()
        page.goto(refwire.url + "/dashboard/")
        screenshot(page, "sign-in")
        self.sign_in(page)
        expect(page.locator("#stats")).to_contain_text("3")
        screenshot(page, "overview")

        page.click("header nav >> text=Referrals")
        row = page.locator("tr", has=page.locator(f"text={created['referral_code']}"))
        expect(row).to_contain_text("Linus")
        page.click(f"text={created['referral_code']}")
        expect(page.locator("main h1")).to_have_text(f"Referral {created['referral_code']}")
        expect(page.locator(".timeline")).to_contain_text("signed_up")
        expect(page.locator("main")).to_contain_text("referral.milestone_reached")
        screenshot(page, "referral")

        # A webhook: its secret is shown once, then never again.
        page.click("header nav >> text=Webhooks")
        page.fill("#webhook-name", "CRM")
        page.fill("#webhook-url", self.receiver.url)
        page.check("input[value='referral.completed']")
        page.click("text=Create webhook")
        secret = page.locator("#shown-secret")
        expect(secret).to_have_text(re.compile(r"^whsec_\S+$"))
        secret_text = secret.inner_text()
        screenshot(page, "webhook-created")
        page.reload()
        expect(page.locator("main h1")).to_have_text("Webhooks")
        expect(page.locator("main table")).to_contain_text("CRM")
        self.assertNotIn(secret_text, page.content())

        # Send a test event, watch it arrive and appear in the log, resend it.
        page.click("text=CRM")
        page.click("#send-test")
        expect(page.locator("#webhook-status")).to_contain_text("queued")
        self.assertEqual(self.receiver.wait_for(1), 1)
        self.assertEqual(self.receiver.received[0]["event"], "test")  # Tolinku's "Send Test" shape
        delivery = page.locator("[data-delivery]")
        self.wait_until(page, lambda: "succeeded" in (delivery.first.inner_text() if delivery.count() else ""))
        delivery.first.locator("text=Attempts").click()
        expect(page.locator("#delivery-log")).to_contain_text("200")
        expect(page.locator("#delivery-log details.request summary")).to_contain_text(f"Request: POST {self.receiver.url}")
        screenshot(page, "webhook-log")
        delivery.first.locator("text=Resend").click()
        expect(page.locator("#webhook-status")).to_contain_text("queued again")
        self.assertEqual(self.receiver.wait_for(2), 2)
        self.wait_until(page, lambda: delivery.first.locator(".attempts").inner_text() == "2")

        # A setting the API refuses: the error shows at its field and nothing changes.
        page.click("header nav >> text=Settings")
        page.fill("#setting-referral_url_template", "https://example.com/r/")
        page.click("text=Save settings")
        error = page.locator(".field-error[data-field=referral_url_template]")
        expect(error).to_contain_text("{code}")
        screenshot(page, "settings-error")
        self.assertEqual(refwire.api("GET", "/v1/api/referral/settings")[1]["referral_url_template"], "https://example.com/r/{code}")
        page.fill("#setting-referral_url_template", "https://example.com/join/{code}")
        page.click("text=Save settings")
        expect(page.locator("#settings-form")).to_contain_text("Settings saved.")
        expect(error).to_have_count(0)
        self.assertEqual(refwire.api("GET", "/v1/api/referral/settings")[1]["referral_url_template"], "https://example.com/join/{code}")

        for section in ["Participants", "Waitlists", "Events", "Overview"]:
            page.click(f"header nav >> text={section}")
            expect(page.locator("main h1")).to_have_text(section)

        # Signed out, neither the pages nor the API answer this browser.
        page.click("text=Sign out")
        expect(page.locator("#key")).to_be_visible()
        page.goto(refwire.url + "/dashboard/#/webhooks")
        expect(page.locator("#key")).to_be_visible()
        self.assertEqual(page.context.request.get(refwire.url + "/v1/webhooks").status, 401)
        self.assertEqual(page.context.request.get(refwire.url + "/dashboard/app.js").status, 401)
        self.assert_no_console_errors(expected=["status of 400"])

        # The secret key was never written to the log after start-up.
        self.assertNotIn(refwire.secret_key, "".join(refwire.later_output))

    def test_waitlist_positions_move_and_remove_and_participants(self):
        refwire = self.refwire
        status, waitlist = refwire.api("POST", "/v1/waitlists", {"name": "Beta", "boost": 1})
        self.assertEqual(status, 201)
        for person in ["first", "second", "third"]:
            refwire.api("POST", f"/v1/waitlists/{waitlist['id']}/signups", {"email": f"{person}@example.com", "name": person.title()})
        page = self.open_page()
        self.sign_in(page)
        page.click("header nav >> text=Waitlists")
        page.click("text=Beta")
        rows = page.locator("[data-signup]")
        expect(rows).to_have_count(3)
        expect(rows.nth(2)).to_contain_text("third@example.com")
        rows.nth(2).locator("input[type=number]").fill("1")
        rows.nth(2).get_by_role("button", name="Move", exact=True).click()
        expect(rows.nth(0)).to_contain_text("third@example.com")
        expect(rows.nth(0).locator(".position")).to_have_text("1")
        expect(rows.nth(1)).to_contain_text("first@example.com")
        screenshot(page, "waitlist")
        rows.nth(1).get_by_role("button", name="Remove", exact=True).click()
        rows.nth(1).get_by_role("button", name="Confirm: remove").click()
        expect(rows).to_have_count(2)
        expect(rows.nth(1)).to_contain_text("second@example.com")
        expect(rows.nth(1).locator(".position")).to_have_text("2")

        page.click("header nav >> text=Participants")
        expect(page.locator("main table")).to_contain_text("third@example.com")
        page.fill("#participant-q", "second@example.com")
        page.click("text=Search")
        expect(page.locator("main tbody tr")).to_have_count(1)
        screenshot(page, "participants")
        self.assert_no_console_errors()

    def test_the_widget_joins_a_waitlist_from_another_origin(self):
        refwire, shop = self.refwire, self.shop
        status, waitlist = refwire.api("POST", "/v1/waitlists", {"name": "Launch", "boost": 2})
        self.assertEqual(status, 201)
        url = shop.add_page("/waitlist", {"key": refwire.publishable_key, "waitlist": waitlist["id"]})

        # Until the program allows the shop's origin, the API refuses the widget (and says why).
        refwire.api("PUT", "/v1/api/referral/settings", {"allowed_origins": []})
        page = self.open_page()
        page.goto(url)
        page.fill("#refwire-widget input[type=email]", "early@example.com")
        page.click("text=Join the waitlist")
        expect(page.locator(".refwire-error")).to_contain_text("allowed_origins")
        self.assertEqual(refwire.api("GET", f"/v1/waitlists/{waitlist['id']}")[1]["signup_count"], 0)

        refwire.api("PUT", "/v1/api/referral/settings", {"allowed_origins": [shop.origin]})
        page = self.open_page()
        page.goto(url)
        page.fill("#refwire-widget input[type=email]", "early@example.com")
        page.click("text=Join the waitlist")
        expect(page.locator(".refwire-position")).to_have_text("You're #1 on the waitlist.")
        share_link = page.locator(".refwire-link").input_value()
        self.assertIn("ref=", share_link)
        screenshot(page, "widget-waitlist")
        # Coming back, the page shows the place again without a new sign-up.
        page.reload()
        expect(page.locator(".refwire-position")).to_have_text("You're #1 on the waitlist.")
        self.assert_no_console_errors()

        # A friend joins through the link: second in line.
        friend = self.open_page()
        friend.goto(share_link)
        friend.fill("#refwire-widget input[type=email]", "friend@example.com")
        friend.click("text=Join the waitlist")
        expect(friend.locator(".refwire-position")).to_have_text("You're #2 on the waitlist.")
        self.assert_no_console_errors()

        # A signed-in user's referral link.
        user_page = shop.add_page("/account", {"key": refwire.publishable_key, "user-id": "shop_user_7", "user-name": "Ada"})
        page = self.open_page()
        page.goto(user_page)
        expect(page.locator(".refwire-link")).to_have_value(re.compile(r"^https://example\.com/.+/[A-Z0-9]+$"))
        self.assert_no_console_errors()

    def wait_until(self, page, condition):
        """Re-reads the delivery log until `condition` holds (deliveries arrive asynchronously)."""
        deadline = time.monotonic() + WAIT_MS / 1000
        while time.monotonic() < deadline:
            page.click("#refresh-log")
            page.wait_for_selector("#refresh-log")
            if condition():
                return
            time.sleep(0.2)
        self.fail("the delivery log never showed the expected state")


if __name__ == "__main__":
    unittest.main()
