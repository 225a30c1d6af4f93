// get-media written as a typical Node.js 20 Lambda with the AWS SDK v3: the peer that
// scripts/bench-peer measures our Rust function (functions/get-media) against, on the
// same event, table and bucket. It does the same work as the Rust handler on the
// admin and member paths: authenticate (Basic or an HS256 access token), one
// consistent BatchGetItem (service + media), a membership GetItem for a user of an
// attached media, a presigned GET (300 s) with the download headers, the Media JSON.
// Not part of the product; not deployed.
import { createHmac, timingSafeEqual } from "node:crypto";
import { BatchGetItemCommand, DynamoDBClient, GetItemCommand } from "@aws-sdk/client-dynamodb";
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { unmarshall } from "@aws-sdk/util-dynamodb";

const env = process.env;
const TABLE = env.TABLE_NAME;
const BUCKET = env.BUCKET_NAME;
const ddb = new DynamoDBClient({ endpoint: env.DYNAMODB_ENDPOINT, region: env.AWS_REGION });
const s3 = new S3Client({
  endpoint: env.S3_ENDPOINT,
  region: env.AWS_REGION,
  forcePathStyle: Boolean(env.S3_ENDPOINT),
});

const json = (statusCode, body) => ({
  statusCode,
  headers: { "content-type": "application/json", "cache-control": "private, no-store" },
  body: JSON.stringify(body),
});
const error = (status, code, message) =>
  json(status, { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status });

const same = (a, b) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

function principal(headers) {
  const auth = headers.authorization || "";
  if (auth.startsWith("Basic ")) {
    const [user, pass = ""] = Buffer.from(auth.slice(6), "base64").toString().split(":");
    const ok = same(user, env.CHAT_MEDIA_ACCOUNT_SID) && same(pass, env.CHAT_MEDIA_AUTH_TOKEN);
    return ok ? { admin: true } : null;
  }
  const token = headers["x-twilio-token"];
  if (!token) return null;
  const [head, body, sig] = token.split(".");
  const expected = createHmac("sha256", env.CHAT_MEDIA_API_KEY_SECRET).update(`${head}.${body}`).digest("base64url");
  if (!sig || !same(sig, expected)) return null;
  const claims = JSON.parse(Buffer.from(body, "base64url").toString());
  if (claims.exp * 1000 < Date.now()) return null;
  return { identity: claims.grants?.identity, service: claims.grants?.chat?.service_sid };
}

function disposition(media) {
  const name = (media.filename || media.sid).replace(/[^\x20-\x7e]|"/g, "_");
  return `attachment; filename="${name}"`;
}

export const handler = async (event) => {
  const who = principal(event.headers || {});
  if (!who) return error(401, 20003, "Authenticate");
  const { service: serviceSid, media: mediaSid } = event.pathParameters;
  if (!who.admin && who.service !== serviceSid) return error(403, 20403, "Forbidden");
  const got = await ddb.send(
    new BatchGetItemCommand({
      RequestItems: {
        [TABLE]: {
          ConsistentRead: true,
          Keys: [
            { PK: { S: serviceSid }, SK: { S: "SERVICE" } },
            { PK: { S: mediaSid }, SK: { S: "MEDIA" } },
          ],
        },
      },
    }),
  );
  const items = (got.Responses?.[TABLE] || []).map((i) => unmarshall(i));
  const service = items.find((i) => i.SK === "SERVICE");
  const media = items.find((i) => i.SK === "MEDIA" && i.service_sid === serviceSid);
  if (!service) return error(404, 20404, `Service ${serviceSid} not found`);
  if (!media) return error(404, 20404, `Media ${mediaSid} not found`);
  if (!who.admin) {
    if (media.message_sid && media.channel_sid) {
      const member = await ddb.send(
        new GetItemCommand({
          TableName: TABLE,
          Key: { PK: { S: media.channel_sid }, SK: { S: `MEMBER#${who.identity}` } },
        }),
      );
      if (!member.Item) return error(403, 50400, "User not member of channel");
    } else if (media.author !== who.identity) {
      return error(403, 20403, "Only its uploader may read it");
    }
  }
  let url = null;
  if (media.status === "ready") {
    url = await getSignedUrl(
      s3,
      new GetObjectCommand({
        Bucket: BUCKET,
        Key: media.object_key,
        ResponseContentType: media.content_type,
        ResponseContentDisposition: disposition(media),
      }),
      { expiresIn: 300 },
    );
  }
  const self = `https://${event.headers.host}/v1/Services/${serviceSid}/Media/${mediaSid}`;
  return json(200, {
    sid: media.sid,
    account_sid: env.CHAT_MEDIA_ACCOUNT_SID,
    service_sid: media.service_sid,
    channel_sid: media.channel_sid ?? null,
    message_sid: media.message_sid ?? null,
    author: media.author,
    category: "media",
    content_type: media.content_type,
    filename: media.filename ?? null,
    size: media.size,
    sha256: media.sha256 ?? null,
    status: media.status,
    date_created: media.date_created,
    date_updated: media.date_updated,
    url: self,
    links: { content: `${self}/Content`, content_direct_temporary: url },
  });
};
