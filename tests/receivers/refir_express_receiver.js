// Runs Refir's documented Express receiver (refir_express_example.js) unchanged as a test
// receiver. Express and body-parser come from npm: scripts/test.sh installs them here.
// Env: PORT. Prints {"listening": port}, then one JSON line per request: {path, status, body},
// with the body as the example's bodyParser.json() parsed it.
'use strict';
const express = require('express');
const bodyParser = require('body-parser');
const { report, quietConsole, listenOnTestPort } = require('./receiver_support.js');

quietConsole();
listenOnTestPort(express);

// Once the example has answered, report what its JSON parser gave it. body-parser exposes its
// parsers as getters, so the wrapper is defined rather than assigned.
const json = bodyParser.json;
Object.defineProperty(bodyParser, 'json', {
  configurable: true,
  value: (options) => {
    const parse = json(options);
    return (req, res, next) => {
      res.on('finish', () => report({ path: req.path, status: res.statusCode, body: req.body }));
      parse(req, res, next);
    };
  },
});

require('./refir_express_example.js');
