// Twilio's Media Content Service clients, unchanged: @twilio/mcs-client 1.0.1,
// 0.5.x (installed as `mcs-client-0.5`) and twilio-mcs-client 0.4.x, each
// uploading, fetching, downloading and comparing bytes against the stack the Rust
// test started. Reads {"base", "service_sid", "token", "png_b64", "big_bytes",
// "other_sid", "missing_sid"} as JSON on stdin (the last two for MediaSet: a
// ready media the caller may read, and one that does not exist); prints
// {"<client>": {...}} of what each library returned.
//
// The clients take the Media endpoint as their base URL (as Twilio Chat hands
// them `https://mcs.us1.twilio.com/v1/Services/IS…/Media`), and the MediaSet URL.
'use strict';

const CLIENTS = {
  'mcs-client-1.0.1': () => require('@twilio/mcs-client').McsClient,
  'mcs-client-0.5': () => require('mcs-client-0.5').McsClient,
  'twilio-mcs-client-0.4': () => require('twilio-mcs-client').McsClient,
};

const readStdin = async () => {
  let data = '';
  for await (const chunk of process.stdin) data += chunk;
  return JSON.parse(data);
};

/** The message of a call that must fail (null if it succeeded). */
const errorOf = async (call) => {
  try {
    await call();
  } catch (e) {
    return String(e && e.message ? e.message : e);
  }
  return null;
};

async function drive(name, Client, req, png) {
  const mediaUrl = `${req.base}/v1/Services/${req.service_sid}/Media`;
  const setUrl = `${req.base}/v1/Services/${req.service_sid}/MediaSet`;
  // 1.0.1 and 0.5 take (token, baseUrl, baseSetUrl, options); 0.4 (token, baseUrl, options).
  const client = name.startsWith('twilio-mcs-client')
    ? new Client(req.token, mediaUrl, { logLevel: 'silent' })
    : new Client(req.token, mediaUrl, setUrl, { logLevel: 'silent' });
  const filename = `${name}.png`;
  const posted = name.startsWith('twilio-mcs-client')
    ? await client.post('image/png', png)
    : await client.post('image/png', png, 'media', filename);
  const fetched = await client.get(posted.sid);
  const url = await fetched.getContentUrl();
  const download = await fetch(url);
  const bytes = Buffer.from(await download.arrayBuffer());
  const big = Buffer.alloc(req.big_bytes, 7);
  png.copy(big);
  const tooLarge = await errorOf(() => client.post('image/png', big));
  // MediaSet (1.0.1 and 0.5; 0.4's mediaSetGet calls `.map` on the transport's
  // response object, not its body, so it cannot work against any server).
  let mediaSet = null;
  if (!name.startsWith('twilio-mcs-client')) {
    const records = await client.mediaSetGet([posted.sid, req.other_sid]);
    mediaSet = {
      records: records.map((m) => ({ sid: m.sid, size: m.size, content_type: m.contentType })),
      missing: await errorOf(() => client.mediaSetGet([posted.sid, req.missing_sid])),
    };
    if (typeof client.mediaSetGetContentUrls === 'function') {
      const urls = await client.mediaSetGetContentUrls([posted.sid, req.other_sid]);
      const setDownload = await fetch(urls.get(posted.sid));
      const setBytes = Buffer.from(await setDownload.arrayBuffer());
      mediaSet.urls = [...urls.keys()];
      mediaSet.url_same_bytes = Buffer.compare(setBytes, png) === 0;
    }
  }
  return {
    sid: posted.sid,
    posted: {
      content_type: posted.contentType,
      size: posted.size,
      filename: posted.filename === undefined ? null : posted.filename,
    },
    fetched: { sid: fetched.sid, size: fetched.size, content_type: fetched.contentType },
    download_status: download.status,
    same_bytes: Buffer.compare(bytes, png) === 0,
    too_large: tooLarge,
    media_set: mediaSet,
  };
}

async function main() {
  const req = await readStdin();
  const png = Buffer.from(req.png_b64, 'base64');
  const out = {};
  for (const [name, load] of Object.entries(CLIENTS)) {
    out[name] = await drive(name, load(), req, png);
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
