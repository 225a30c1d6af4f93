// twilio-node, unchanged: every Chat v2 Service parameter of Twilio's spec set
// with `services(sid).update(...)` and read back, then `Limits.ChannelMembers`
// and `Limits.UserChannels` refused with Twilio's codes. Reads {"base",
// "account_sid", "auth_token"} as JSON on stdin; prints what the library returned
// (tests/tests/api/service_params.rs checks it).
'use strict';
const twilio = require('twilio');

const readStdin = async () => {
  let data = '';
  for await (const chunk of process.stdin) data += chunk;
  return JSON.parse(data);
};

/** The status and Twilio code of a call that must fail. */
const errorOf = async (call) => {
  try {
    await call();
  } catch (e) {
    return { status: e.status, code: e.code };
  }
  return null;
};

async function main() {
  const req = await readStdin();
  const client = twilio(req.account_sid, req.auth_token);
  client.chat.baseUrl = req.base;
  const chat = client.chat.v2;
  const service = await chat.services.create({ friendlyName: 'node service params' });
  const svc = chat.services(service.sid);
  const out = {
    sid: service.sid,
    created: { limits: service.limits, read_status_enabled: service.readStatusEnabled },
  };
  await svc.update({
    readStatusEnabled: false,
    reachabilityEnabled: true,
    typingIndicatorTimeout: 9,
    consumptionReportInterval: 20,
    'notifications.newMessage.enabled': true,
    'notifications.newMessage.template': '${USER}: ${MESSAGE}',
    'notifications.newMessage.sound': 'ding.wav',
    'notifications.newMessage.badgeCountEnabled': true,
    'notifications.addedToChannel.enabled': true,
    'notifications.addedToChannel.template': 'Added to ${CHANNEL}',
    'notifications.addedToChannel.sound': 'added.wav',
    'notifications.removedFromChannel.enabled': true,
    'notifications.removedFromChannel.template': 'Removed from ${CHANNEL}',
    'notifications.removedFromChannel.sound': 'removed.wav',
    'notifications.invitedToChannel.enabled': true,
    'notifications.invitedToChannel.template': 'Invited to ${CHANNEL}',
    'notifications.invitedToChannel.sound': 'invited.wav',
    'notifications.logEnabled': true,
    'limits.channelMembers': 2,
    'limits.userChannels': 2,
  });
  const fetched = await svc.fetch();
  out.fetched = {
    read_status_enabled: fetched.readStatusEnabled,
    reachability_enabled: fetched.reachabilityEnabled,
    typing_indicator_timeout: fetched.typingIndicatorTimeout,
    consumption_report_interval: fetched.consumptionReportInterval,
    notifications: fetched.notifications,
    limits: fetched.limits,
  };
  out.bad_limit = await errorOf(() => svc.update({ 'limits.channelMembers': 1001 }));
  out.bad_user_limit = await errorOf(() => svc.update({ 'limits.userChannels': 0 }));
  const general = await svc.channels.create({ friendlyName: 'general' });
  for (const identity of ['alice', 'bob']) {
    await svc.channels(general.sid).members.create({ identity });
  }
  out.third_member = await errorOf(() =>
    svc.channels(general.sid).members.create({ identity: 'carol' }));
  const second = await svc.channels.create({ friendlyName: 'second' });
  await svc.channels(second.sid).members.create({ identity: 'alice' });
  const third = await svc.channels.create({ friendlyName: 'third' });
  out.third_channel = await errorOf(() =>
    svc.channels(third.sid).members.create({ identity: 'alice' }));
  await svc.channels(second.sid).members('alice').remove();
  out.after_leaving = (await svc.channels(third.sid).members.create({ identity: 'alice' })).identity;
  out.third_sid = third.sid;
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
