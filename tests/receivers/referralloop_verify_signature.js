// ReferralLoop's webhook documentation, "Security" > "Webhook Signatures (Coming Soon)" >
// "Verification Example", verbatim up to the export at the end.
const crypto = require("crypto");

function verifyWebhookSignature(payload, signature, secret) {
  const expectedSignature = crypto
    .createHmac("sha256", secret)
    .update(JSON.stringify(payload))
    .digest("hex");

  return crypto.timingSafeEqual(
    Buffer.from(signature),
    Buffer.from(expectedSignature)
  );
}

// Not in the documentation: exported so that referralloop_express_receiver.js can call it.
module.exports = { verifyWebhookSignature };
