// Runs ReferralLoop's documented Express receiver (referralloop_express_example.js) unchanged as a
// test receiver, and checks each request with ReferralLoop's documented verifyWebhookSignature
// (referralloop_verify_signature.js) over req.body as the example's express.json() parsed it.
// Express comes from npm: scripts/test.sh installs it into node_modules here.
//
// Env: PORT; WEBHOOK_SECRETS, a JSON object from event type to the signing secret of the
// subscription that delivers it (one secret per subscription).
// Prints {"listening": port}, then one JSON line per request:
// {event_type, waitlist_id, data, timestamp, status, verified}.
'use strict';
const express = require('express');
const { verifyWebhookSignature } = require('./referralloop_verify_signature.js');
const { report, quietConsole, listenOnTestPort } = require('./receiver_support.js');

const secrets = JSON.parse(process.env.WEBHOOK_SECRETS || '{}');
quietConsole();
listenOnTestPort(express);

function verified(req) {
  const signatureHeader = req.headers['x-webhook-signature'] || '';
  const secret = secrets[(req.body || {}).event_type] || '';
  try {
    return verifyWebhookSignature(req.body, signatureHeader.replace(/^sha256=/, ''), secret);
  } catch (err) {
    // timingSafeEqual throws when the two signatures differ in length.
    return false;
  }
}

// The example's own express.json() parses the body; once the example has answered, report what
// it parsed and whether the documented verifier accepts the signature.
const json = express.json;
express.json = (options) => {
  const parse = json(options);
  return (req, res, next) => {
    res.on('finish', () => {
      const { event_type, waitlist_id, data, timestamp } = req.body || {};
      report({ event_type, waitlist_id, data, timestamp, status: res.statusCode, verified: verified(req) });
    });
    parse(req, res, next);
  };
};

require('./referralloop_express_example.js');
