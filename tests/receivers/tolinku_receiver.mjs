// A receiver built from Tolinku's documented Node verification code, unchanged (Tolinku's guide to
// referral webhooks and its guide to webhooks for deep links): the first check is the minimal Express
// example's, the second the production server's `verifySignature`. Served with node:http instead of
// Express so it needs no npm install.
// Env: PORT, TOLINKU_WEBHOOK_SECRET. Prints one JSON line per request: {event, id, attempt, verified}.
import http from 'node:http';
import crypto from 'crypto';

// Tolinku's guide to webhooks for deep links, "Putting It All Together", verbatim.
function verifySignature(rawBody, signature, secret) { const expected = crypto .createHmac('sha256', secret) .update(rawBody) .digest('hex'); const sig = Buffer.from(signature, 'hex'); const exp = Buffer.from(expected, 'hex'); if (sig.length !== exp.length) return false; return crypto.timingSafeEqual(sig, exp); }

function handle(req, rawBody, res) {
  // Tolinku's guide to referral webhooks, "Setting Up the Webhook Endpoint", verbatim but for the
  // TypeScript casts.
  const signature = req.headers['x-webhook-signature'];
  const event = req.headers['x-webhook-event'];
  const body = rawBody.toString();
  // Verify signature
  const secret = process.env.TOLINKU_WEBHOOK_SECRET;
  const expected = crypto.createHmac('sha256', secret).update(body).digest('hex');
  const minimalOk = signature === expected;
  const productionOk = verifySignature(rawBody, signature || '', secret);
  const verified = minimalOk && productionOk;
  const payload = verified ? JSON.parse(body) : {};
  console.log(JSON.stringify({ event, id: payload.id, attempt: req.headers['x-webhook-attempt'], verified }));
  if (!verified) {
    res.writeHead(401, { 'content-type': 'application/json' });
    return res.end(JSON.stringify({ error: 'Invalid signature' }));
  }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ received: true }));
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => handle(req, Buffer.concat(chunks), res));
});
server.listen(Number(process.env.PORT), '127.0.0.1', () => {
  console.log(JSON.stringify({ listening: server.address().port }));
});
