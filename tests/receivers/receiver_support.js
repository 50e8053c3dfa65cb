// What the Express test receivers share: they run a product's documented Express code unchanged,
// so they adjust Express itself before that code loads.
'use strict';
const http = require('http');

const stdout = process.stdout;

/** Writes one report line (JSON) to stdout, which carries nothing else. */
function report(line) {
  stdout.write(`${JSON.stringify(line)}\n`);
}

/** Sends what the documented code logs to stderr, so stdout stays report lines only. */
function quietConsole() {
  console.log = console.error;
}

/**
 * The documented examples listen on their own port on every interface; a test receiver listens on
 * PORT on 127.0.0.1. express() copies `listen` from express.application into each app it makes.
 */
function listenOnTestPort(express) {
  express.application.listen = function listenOnTestPort() {
    const server = http.createServer(this);
    return server.listen(Number(process.env.PORT), '127.0.0.1', () => {
      report({ listening: server.address().port });
    });
  };
}

module.exports = { report, quietConsole, listenOnTestPort };
