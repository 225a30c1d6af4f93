// The block-user Function of Twilio's Flex chat attachments guide ("Building with
// Chat Attachments"): a Flex plugin posts `chatChannelSid`, `memberSid` and the
// agent's Flex token (`Token`); twilio-flex-token-validator checks the token, and
// the Function moves the member to the service's blocked role with the Twilio
// client of the Function's own account. It runs here unchanged under twilio-run;
// ../chat-base-url.js is the one-line shim that points its Twilio client at
// chat-media (see the README's Flex section).
const TokenValidator = require('twilio-flex-token-validator').functionValidator;

exports.handler = TokenValidator(async function (context, event, callback) {
  const response = new Twilio.Response();
  response.appendHeader('Access-Control-Allow-Origin', '*');
  response.appendHeader('Access-Control-Allow-Methods', 'OPTIONS, POST');
  response.appendHeader('Access-Control-Allow-Headers', 'Content-Type');
  response.appendHeader('Content-Type', 'application/json');
  try {
    const client = context.getTwilioClient();
    const member = await client.chat
      .services(context.CHAT_SERVICE_SID)
      .channels(event.chatChannelSid)
      .members(event.memberSid)
      .update({ roleSid: context.BLOCKED_ROLE_SID });
    response.setBody({ memberSid: member.sid, roleSid: member.roleSid });
  } catch (err) {
    response.setStatusCode(err.status || 500);
    response.setBody({ error: err.message });
  }
  callback(null, response);
});
