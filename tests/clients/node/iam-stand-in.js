// Test only: Twilio's token validation API (iam.twilio.com, HTTPS on 443, as
// twilio-flex-token-validator calls it) cannot be reached from the tests, so its
// requests go to the stand-in server at FLEX_TOKEN_VALIDATION_STAND_IN (plain
// HTTP on 127.0.0.1), which answers as that API is documented. Loaded with
// `node --require` next to chat-base-url.js.
'use strict';
const http = require('http');
const https = require('https');

const target = new URL(process.env.FLEX_TOKEN_VALIDATION_STAND_IN);
const original = https.request;
https.request = function request(options, callback) {
  if (options && typeof options === 'object' && /^iam(\.[a-z0-9-]+)?\.twilio\.com$/.test(options.hostname || '')) {
    const { agent, ...rest } = options;
    return http.request({ ...rest, protocol: 'http:', hostname: target.hostname, port: target.port }, callback);
  }
  return original.apply(this, arguments);
};
