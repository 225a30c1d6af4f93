// The library against a running chat-media (tests/tests/api/js_client.rs starts
// one and passes its URL, a service, a channel and tokens in the environment).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { ChatMediaClient, ChatMediaError, presignedUrlExpiry } from "../dist/index.js";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set: run through tests/tests/api/js_client.rs`);
  return v;
};
const baseUrl = env("CHAT_MEDIA_URL");
const serviceSid = env("CHAT_MEDIA_SERVICE_SID");
const channel = env("CHAT_MEDIA_CHANNEL_SID");
const alice = env("CHAT_MEDIA_ALICE_TOKEN");
const agent = env("CHAT_MEDIA_AGENT_TOKEN");

const PNG = Buffer.from(env("CHAT_MEDIA_PNG_HEX"), "hex");

/** A well-formed PNG of `size` bytes (at least 57): the 1×1 PNG's signature and
 * IHDR, one filler chunk, IEND. The server refuses a malformed image (it strips
 * metadata), so bytes that only start like a PNG would be a 415. */
function pngLike(size) {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7) % 251;
  b.set(PNG.subarray(0, 33));
  new DataView(b.buffer).setUint32(33, size - 57);
  b.set(Buffer.from("teSt"), 37);
  b.set(Buffer.from([0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]), size - 12);
  return b;
}

/** A fetch that records each call, and can fail some. */
function recordingFetch(fail = () => null) {
  const calls = [];
  const f = async (url, init = {}) => {
    const call = { url: String(url), method: init.method ?? "GET" };
    calls.push(call);
    const injected = fail(call, calls);
    if (injected) return injected;
    return fetch(url, init);
  };
  return { f, calls };
}

const asAlice = (extra = {}) => new ChatMediaClient({ baseUrl, serviceSid, token: alice, ...extra });

test("direct upload reports progress and returns ready media", async () => {
  const events = [];
  const media = await asAlice().uploadMedia(new Blob([PNG], { type: "image/png" }), {
    filename: "dot.png",
    onProgress: (p) => events.push(p),
  });
  assert.equal(media.status, "ready");
  assert.equal(media.author, "alice");
  assert.equal(media.size, PNG.length);
  assert.deepEqual(events.at(0), { loaded: 0, total: PNG.length });
  assert.deepEqual(events.at(-1), { loaded: PNG.length, total: PNG.length });
});

test("a 20 MiB upload goes by session in parallel parts with rising progress", async () => {
  const data = pngLike(20 << 20);
  const { f, calls } = recordingFetch();
  const events = [];
  const media = await asAlice({ fetch: f }).uploadMedia(data, {
    filename: "big.png",
    contentType: "image/png",
    onProgress: (p) => events.push(p.loaded),
  });
  assert.equal(media.status, "ready");
  assert.equal(media.size, data.length);
  assert.equal(media.sha256, createHash("sha256").update(data).digest("hex"));
  const puts = calls.filter((c) => c.method === "PUT");
  assert.equal(puts.length, 3, "8 + 8 + 4 MiB parts");
  for (let i = 1; i < events.length; i++) assert.ok(events[i] >= events[i - 1], "progress never goes back");
  assert.equal(events.at(-1), data.length);
  assert.ok(events.length >= 4, `${events.length} progress events`);
});

test("a failed part is retried with backoff", async () => {
  let failed = 0;
  const { f, calls } = recordingFetch((call) => {
    if (call.method === "PUT" && call.url.includes("partNumber=2") && failed < 2) {
      failed++;
      return new Response("<Error><Code>SlowDown</Code></Error>", { status: 503 });
    }
    return null;
  });
  const media = await asAlice({ fetch: f, retryDelayMs: 10 }).uploadMedia(pngLike(17 << 20), {
    filename: "retry.png",
    contentType: "image/png",
  });
  assert.equal(media.status, "ready");
  assert.equal(failed, 2);
  assert.equal(calls.filter((c) => c.method === "PUT").length, 3 + 2);
});

test("an upload is cancelled by its AbortSignal", async () => {
  const controller = new AbortController();
  const { f } = recordingFetch((call) => {
    if (call.method === "PUT") controller.abort();
    return null;
  });
  await assert.rejects(
    asAlice({ fetch: f }).uploadMedia(pngLike(17 << 20), {
      filename: "cancel.png",
      contentType: "image/png",
      signal: controller.signal,
    }),
    (e) => e.name === "AbortError",
  );
});

test("a refused file is a typed error with Twilio's code", async () => {
  const exe = new Uint8Array(2048);
  exe.set([0x4d, 0x5a]);
  await assert.rejects(asAlice().uploadMedia(exe, { filename: "tool.exe" }), (e) => {
    assert.ok(e instanceof ChatMediaError);
    assert.equal(e.status, 415);
    assert.equal(e.code, 20415);
    assert.match(e.message, /\.exe/);
    return true;
  });
});

test("sendMediaMessage, temporary URL cached and single-flight, delete", async () => {
  const client = asAlice();
  const message = await client.sendMediaMessage(channel, new Blob([PNG], { type: "image/png" }), {
    filename: "dot.png",
    attributes: { from: "test" },
  });
  assert.equal(message.type, "media");
  const mediaSid = message.media.sid;

  const { f, calls } = recordingFetch();
  const reader = asAlice({ fetch: f });
  const urls = await Promise.all(Array.from({ length: 5 }, () => reader.getContentTemporaryUrl(mediaSid)));
  assert.equal(new Set(urls).size, 1);
  assert.equal(calls.length, 1, "five concurrent calls, one request");
  assert.ok(presignedUrlExpiry(urls[0]) > Date.now());
  await reader.getContentTemporaryUrl(mediaSid);
  assert.equal(calls.length, 1, "cached until it nears expiry");
  const blobs = await Promise.all([reader.getMediaContent(mediaSid), reader.getMediaContent(mediaSid)]);
  assert.equal(blobs[0], blobs[1], "one download shared");
  assert.deepEqual(Buffer.from(await blobs[0].arrayBuffer()), PNG);
  assert.equal(calls.length, 2, "one more fetch: the bytes");

  const text = await client.sendMessage(channel, "hello");
  assert.equal(text.body, "hello");
  await client.deleteMessage(channel, message.sid);
  await assert.rejects(client.getMedia(mediaSid), (e) => e.status === 404);
});

test("a moderator blocks and unblocks; a blocked member's send is refused", async () => {
  const moderator = new ChatMediaClient({ baseUrl, serviceSid, token: () => agent });
  const blocked = await moderator.blockMember(channel, "alice");
  assert.equal(blocked.blocked, true);
  await assert.rejects(asAlice().sendMessage(channel, "let me"), (e) => {
    assert.equal(e.status, 403);
    assert.equal(e.code, 50107);
    return true;
  });
  const unblocked = await moderator.unblockMember(channel, "alice");
  assert.equal(unblocked.blocked, false);
  await asAlice().sendMessage(channel, "back");
});
