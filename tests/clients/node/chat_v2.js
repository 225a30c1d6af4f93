// twilio-node, unchanged, driving every Chat v2 operation chat-media implements
// against the stack the Rust test started. Reads {"base", "account_sid",
// "auth_token"} as JSON on stdin; prints one JSON object of what the library
// returned, which tests/tests/api/twilio_clients.rs checks.
//
// Pointing the library at the stack is one line: the Chat domain's `baseUrl`, the
// property twilio-node's own Domain reads for every URL it builds (absolute
// `next_page_url`s from the server are requested as given).
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

/** Every item `.each` hands over, in order. */
const eachOf = (list, opts) =>
  new Promise((resolve, reject) => {
    const seen = [];
    list.each({
      ...opts,
      callback: (item) => seen.push(item),
      done: (err) => (err ? reject(err) : resolve(seen)),
    });
  });

async function main() {
  const req = await readStdin();
  const client = twilio(req.account_sid, req.auth_token);
  client.chat.baseUrl = req.base;
  const chat = client.chat.v2;
  const out = {};

  // Services: create, fetch, update, list, delete.
  const service = await chat.services.create({ friendlyName: 'node clients' });
  const svc = chat.services(service.sid);
  out.service = { sid: service.sid, friendly_name: service.friendlyName };
  out.service_fetched = (await svc.fetch()).friendlyName;
  const updated = await svc.update({
    friendlyName: 'node clients renamed',
    'media.compatibilityMessage': 'sent a file',
  });
  out.service_updated = { friendly_name: updated.friendlyName, media: updated.media };
  out.service_listed = (await chat.services.list()).some((s) => s.sid === service.sid);
  const doomed = await chat.services.create({ friendlyName: 'node doomed' });
  out.service_deleted = await chat.services(doomed.sid).remove();
  out.service_deleted_fetch = await errorOf(() => chat.services(doomed.sid).fetch());

  // Roles: create, fetch, update, list, delete.
  const role = await svc.roles.create({
    friendlyName: 'node moderators',
    type: 'channel',
    permission: ['sendMessage', 'removeMember'],
  });
  out.role_created = { type: role.type, permissions: role.permissions };
  out.role_fetched = (await svc.roles(role.sid).fetch()).friendlyName;
  out.role_updated = (
    await svc.roles(role.sid).update({
      permission: ['sendMessage', 'sendMediaMessage', 'removeMember'],
    })
  ).permissions;
  out.roles_listed = (await svc.roles.list()).map((r) => r.friendlyName).sort();
  const spare = await svc.roles.create({
    friendlyName: 'node spare',
    type: 'deployment',
    permission: ['createChannel'],
  });
  out.role_deleted = await svc.roles(spare.sid).remove();

  // Users: create, fetch (by identity), list.
  const user = await svc.users.create({ identity: 'alice', friendlyName: 'Alice' });
  out.user_created = { sid: user.sid, identity: user.identity };
  out.user_fetched = (await svc.users('alice').fetch()).sid;
  out.users_listed = (await svc.users.list()).map((u) => u.identity);

  // Channels: create, fetch (by unique name), list, delete.
  const channel = await svc.channels.create({ friendlyName: 'General', uniqueName: 'general' });
  out.channel_created = { sid: channel.sid, unique_name: channel.uniqueName };
  out.channel_fetched = (await svc.channels('general').fetch()).sid;
  const extra = await svc.channels.create({ friendlyName: 'Extra' });
  out.channels_listed = (await svc.channels.list()).map((c) => c.friendlyName).sort();
  out.channel_deleted = await svc.channels(extra.sid).remove();
  out.channel_deleted_fetch = await errorOf(() => svc.channels(extra.sid).fetch());
  const ch = svc.channels(channel.sid);

  // Members: create, fetch (by identity), list (paged), update, delete.
  const members = {};
  for (const name of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace']) {
    members[name] = (await ch.members.create({ identity: name })).sid;
  }
  out.member_fetched = (await ch.members('bob').fetch()).sid === members.bob;
  out.members_listed = (await ch.members.list({ pageSize: 3 })).map((m) => m.identity).sort();
  // Twilio's repeated Identity filter, one member a page.
  out.members_filtered = (await ch.members.list({ identity: ['alice', 'carol', 'nobody'], pageSize: 1 }))
    .map((m) => m.identity)
    .sort();
  out.member_updated = (await ch.members(members.bob).update({ roleSid: role.sid })).roleSid;
  const carol = await ch.members(members.carol).update({
    attributes: '{"x":1}',
    lastConsumedMessageIndex: 0,
  });
  out.member_fields_updated = {
    attributes: carol.attributes,
    last_consumed_message_index: carol.lastConsumedMessageIndex,
    role_sid: carol.roleSid,
  };
  out.member_deleted = await ch.members(members.grace).remove();
  out.member_deleted_fetch = await errorOf(() => ch.members(members.grace).fetch());

  // Messages: create, fetch, list/each in both orders past page one, delete.
  const sent = [];
  for (let i = 0; i < 12; i++) {
    sent.push((await ch.messages.create({ body: `m${String(i).padStart(2, '0')}`, from: 'alice' })).sid);
  }
  const first = await ch.messages(sent[0]).fetch();
  out.message_fetched = { body: first.body, from: first.from, index: first.index };
  out.list_asc = (await ch.messages.list({ pageSize: 5 })).map((m) => m.body);
  out.list_desc = (await ch.messages.list({ order: 'desc', pageSize: 5 })).map((m) => m.body);
  out.each_asc = (await eachOf(ch.messages, { order: 'asc', pageSize: 5 })).map((m) => m.body);
  out.each_desc = (await eachOf(ch.messages, { order: 'desc', pageSize: 5 })).map((m) => m.body);
  out.each_limit = (await eachOf(ch.messages, { limit: 7, pageSize: 5 })).map((m) => m.body);
  const page = await ch.messages.page({ pageSize: 5 });
  out.page_two = (await page.nextPage()).instances.map((m) => m.body);
  const edited = await ch.messages(sent[1]).update({ body: 'm01 edited', attributes: '{"e":1}' });
  out.message_updated = { body: edited.body, attributes: edited.attributes, was_edited: edited.wasEdited };
  out.message_deleted = await ch.messages(sent[11]).remove();
  out.message_deleted_fetch = await errorOf(() => ch.messages(sent[11]).fetch());
  // Channel update; users: update, their channels, delete.
  const renamed = await ch.update({ friendlyName: 'General renamed', attributes: '{"topic":"news"}' });
  out.channel_updated = { friendly_name: renamed.friendlyName, attributes: renamed.attributes };
  out.user_updated = (await svc.users('alice').update({ friendlyName: 'Alice B' })).friendlyName;
  out.user_channels = (await svc.users(user.sid).userChannels.list()).map((c) => c.channelSid);
  const zed = await svc.users.create({ identity: 'zed' });
  out.user_deleted = await svc.users(zed.sid).remove();
  out.user_deleted_fetch = await errorOf(() => svc.users(zed.sid).fetch());
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e, e && e.moreInfo ? JSON.stringify(e) : '');
  process.exit(1);
});
