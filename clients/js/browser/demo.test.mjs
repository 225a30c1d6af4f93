// The demo page (GET /demo on the local runner) in headless Debian Chromium,
// driven by playwright-core (no browser download). tests/tests/api/demo.rs starts
// the app and passes the page URL, the API origin (another origin: CORS and the
// X-Twilio-Token preflight are real) and the fixture in the environment.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deflateSync, crc32 } from "node:zlib";
import { chromium } from "playwright-core";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set: run through tests/tests/api/demo.rs`);
  return v;
};
const pageOrigin = env("DEMO_PAGE_ORIGIN");
const api = env("DEMO_API");
const service = env("DEMO_SERVICE_SID");
const channel = env("DEMO_CHANNEL_SID");
const screenshot = process.env.DEMO_SCREENSHOT;

/** A real PNG of w×h noise, stored (deflate level 0): about 3·w·h bytes. */
function png(w, h) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const raw = Buffer.alloc(h * (1 + 3 * w));
  let x = 12345;
  for (let i = 0; i < raw.length; i++) {
    if (i % (1 + 3 * w) === 0) continue; // filter byte 0
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    raw[i] = x >> 16;
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw, { level: 0 })),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

let context;
let userDataDir;
before(async () => {
  userDataDir = mkdtempSync(join(tmpdir(), "chat-media-chromium-"));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1000, height: 760 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      // The server listens on 127.0.0.1 only; localhost is the page's other origin.
      "--host-resolver-rules=MAP localhost 127.0.0.1",
    ],
  });
});
after(async () => {
  await context?.close();
  rmSync(userDataDir, { recursive: true, force: true });
});

async function open(identity) {
  const page = await context.newPage();
  const url = `${pageOrigin}/demo?service=${service}&channel=${channel}&identity=${identity}&api=${encodeURIComponent(api)}`;
  await page.goto(url);
  await page.waitForFunction(() => window.demo && window.demo.ready, null, { timeout: 15000 });
  return page;
}

const statusText = (page) => page.locator("#status").textContent();

test("the demo page uploads, sends, renders, refuses, deletes and moderates", async () => {
  const alice = await open("alice");
  const apiResponses = [];
  alice.on("response", (r) => {
    if (r.url().startsWith(api)) apiResponses.push(r);
  });

  // 20 MB image through the page: progress events, the message, the rendered size.
  const image = png(2600, 2600);
  assert.ok(image.length > 20_000_000, `${image.length} bytes`);
  await alice.setInputFiles("#file", { name: "noise.png", mimeType: "image/png", buffer: image });
  await alice.click("#send-file");
  await alice.waitForFunction(() => /^sent IM/.test(document.getElementById("status").textContent), null, {
    timeout: 120000,
  });
  const events = await alice.evaluate(() => window.demo.events);
  assert.ok(events.length >= 5, `${events.length} progress events`);
  for (let i = 1; i < events.length; i++) assert.ok(events[i].loaded >= events[i - 1].loaded);
  assert.equal(events.at(-1).loaded, image.length);
  assert.equal(events.at(-1).total, image.length);
  assert.ok(events.some((e) => e.loaded > 0 && e.loaded < image.length), "intermediate progress");
  const img = alice.locator("#messages li img");
  await img.waitFor();
  await alice.waitForFunction(() => document.querySelector("#messages li img")?.complete, null, { timeout: 60000 });
  const size = await img.evaluate((el) => [el.naturalWidth, el.naturalHeight]);
  assert.deepEqual(size, [2600, 2600]);
  assert.equal(await img.getAttribute("alt"), "noise.png");

  // CORS from a real browser origin: the API answered this page's origin.
  const sent = apiResponses.find((r) => r.request().method() === "POST" && r.url().includes("/Messages"));
  assert.ok(sent, "the message POST went to the API origin");
  assert.equal(sent.status(), 201);
  assert.equal((await sent.allHeaders())["access-control-allow-origin"], pageOrigin);
  assert.ok(sent.request().headers()["x-twilio-token"], "sent with X-Twilio-Token (preflighted)");

  // A refused .exe.
  const exe = Buffer.alloc(2048, 0x90);
  exe.write("MZ", 0);
  await alice.setInputFiles("#file", { name: "tool.exe", mimeType: "application/octet-stream", buffer: exe });
  await alice.click("#send-file");
  await alice.waitForFunction(() => document.getElementById("status").className === "error");
  assert.match(await statusText(alice), /415 \(code 20415\).*\.exe/);

  // A text message, then the delete of the media message.
  await alice.fill("#text", "hello from chromium");
  await alice.click("#send-text");
  await alice.waitForFunction(() => document.querySelectorAll("#messages li").length === 2);
  if (screenshot) await alice.screenshot({ path: screenshot });
  await alice.locator("#messages li").first().locator("button.delete").click();
  await alice.waitForFunction(() => /^deleted IM/.test(document.getElementById("status").textContent));
  assert.equal(await alice.locator("#messages li img").count(), 0);

  // The moderator blocks alice from the page; her next send is refused.
  const agent = await open("agent");
  await agent.fill("#member", "alice");
  await agent.click("#block");
  await agent.waitForFunction(() => /blocked$/.test(document.getElementById("status").textContent));
  assert.equal(await statusText(agent), "alice blocked");
  await alice.fill("#text", "am I blocked?");
  await alice.click("#send-text");
  await alice.waitForFunction(() => document.getElementById("status").className === "error");
  assert.match(await statusText(alice), /403 \(code 50107\)/);
  await agent.click("#unblock");
  await agent.waitForFunction(() => /unblocked$/.test(document.getElementById("status").textContent));
});
