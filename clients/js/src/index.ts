/**
 * @chat-media/client: the browser and Node (20+) client of chat-media, a backend
 * wire-compatible with Twilio Programmable Chat v2 and Twilio's Media API.
 *
 * No runtime dependencies: `fetch`, `Blob`, `AbortSignal` and, in browsers,
 * `XMLHttpRequest` for byte-level upload progress.
 */

/** Twilio's error body (`{code, message, more_info, status}`) as an exception. */
export class ChatMediaError extends Error {
  override readonly name = "ChatMediaError";
  constructor(
    /** HTTP status (0 for a network failure). */
    readonly status: number,
    /** Twilio error code, e.g. 50107, 20415. */
    readonly code: number | null,
    message: string,
    readonly moreInfo: string | null = null,
    readonly body: unknown = null,
  ) {
    super(message);
  }
}

/** The upload was cancelled through its `AbortSignal`. */
export class ChatMediaAbortError extends Error {
  override readonly name = "AbortError";
  constructor() {
    super("The upload was aborted");
  }
}

export interface Media {
  sid: string;
  account_sid: string;
  service_sid: string;
  channel_sid: string | null;
  message_sid: string | null;
  author: string;
  category: "media";
  content_type: string;
  filename: string | null;
  size: number;
  status: "uploading" | "scanning" | "ready" | "rejected" | "failed";
  status_reason: string | null;
  sha256: string | null;
  date_created: string;
  date_updated: string;
  url: string;
  links: { content: string; content_direct_temporary?: string | null; complete?: string };
}

export interface Message {
  sid: string;
  service_sid: string;
  channel_sid?: string;
  to: string;
  from: string;
  body: string | null;
  type: "text" | "media";
  media: { sid: string; content_type: string; filename: string | null; size: number } | null;
  attributes: string;
  index: number;
  date_created: string;
  url: string;
}

export interface ModerationResult {
  member_sid: string;
  channel_sid: string;
  role_sid: string;
  previous_role_sid: string | null;
  blocked: boolean;
}

export interface UploadProgress {
  /** Bytes the server (or storage) has taken so far. */
  loaded: number;
  total: number;
}

export interface UploadOptions {
  filename?: string;
  contentType?: string;
  onProgress?: (p: UploadProgress) => void;
  signal?: AbortSignal;
  /** Parts sent at once (default: the client's, 4). */
  parallel?: number;
}

export interface SendOptions {
  attributes?: Record<string, unknown> | string;
  /** Author (admins only). */
  from?: string;
}

/** Anything `uploadMedia` takes: a `File`/`Blob`, bytes, or a Node `Buffer`. */
export type UploadData = Blob | ArrayBuffer | ArrayBufferView;

export interface ClientOptions {
  /** e.g. `https://api.example.com` (no trailing slash needed). */
  baseUrl: string;
  /** The service (IS…) all calls go to. */
  serviceSid: string;
  /** A user access token, or a function returning a fresh one (Flex: `manager.user.token`). */
  token?: string | (() => string | Promise<string>);
  /** Admin credentials (server-side use only: never ship them to a browser). */
  basicAuth?: { accountSid: string; authToken: string };
  /** Largest file sent in one direct POST (the server's is 4 MiB). */
  directUploadMaxBytes?: number;
  /** Parts uploaded at once (default 4). */
  parallel?: number;
  /** Attempts per part before the upload fails (default 5). */
  attempts?: number;
  /** Backoff before the first retry, doubled each time (default 300 ms). */
  retryDelayMs?: number;
  /** A `fetch` to use instead of the global one. */
  fetch?: typeof fetch;
}

interface UploadPart {
  part_number: number;
  size: number;
  method: string;
  url: string;
  headers: Record<string, string>;
}

interface UploadSession extends Media {
  upload: {
    type: "single" | "multipart";
    part_size: number;
    part_count: number;
    url_expires: string;
    parts: UploadPart[];
    complete_url: string;
  };
}

const DIRECT_MAX = 4 * 1024 * 1024;
/** A temporary URL is reused until this long before it expires. */
const URL_EXPIRY_MARGIN_MS = 30_000;
/** Headers a browser sets itself and refuses from scripts. */
const FORBIDDEN_HEADERS = new Set(["content-length", "host", "connection"]);

function toBlob(data: UploadData, type: string): Blob {
  if (data instanceof Blob) return data;
  if (data instanceof ArrayBuffer) return new Blob([data], { type });
  const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Blob([view as Uint8Array<ArrayBuffer>], { type });
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new ChatMediaAbortError());
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new ChatMediaAbortError());
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function form(pairs: [string, string][]): URLSearchParams {
  const f = new URLSearchParams();
  for (const [k, v] of pairs) f.append(k, v);
  return f;
}

/** When a presigned S3 URL stops working: `X-Amz-Date` + `X-Amz-Expires`. */
export function presignedUrlExpiry(url: string): number | null {
  try {
    const q = new URL(url).searchParams;
    const date = q.get("X-Amz-Date");
    const ttl = Number(q.get("X-Amz-Expires"));
    if (!date || !Number.isFinite(ttl)) return null;
    const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(date);
    if (!m) return null;
    const [, y, mo, d, h, mi, s] = m.map(Number);
    return Date.UTC(y!, mo! - 1, d!, h!, mi!, s!) + ttl * 1000;
  } catch {
    return null;
  }
}

async function errorOf(response: Response): Promise<ChatMediaError> {
  const text = await response.text().catch(() => "");
  let body: any = null;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON: storage errors are XML */
  }
  return new ChatMediaError(
    response.status,
    typeof body?.code === "number" ? body.code : null,
    typeof body?.message === "string" ? body.message : text.slice(0, 200) || response.statusText,
    typeof body?.more_info === "string" ? body.more_info : null,
    body ?? text,
  );
}

function retryable(status: number): boolean {
  return status === 0 || status === 408 || status === 429 || status >= 500;
}

export class ChatMediaClient {
  readonly baseUrl: string;
  readonly serviceSid: string;
  private readonly opts: ClientOptions;
  private readonly fetchImpl: typeof fetch;
  private readonly urlCache = new Map<string, { url: string; expires: number }>();
  private readonly urlInFlight = new Map<string, Promise<string>>();
  private readonly contentInFlight = new Map<string, Promise<Blob>>();

  constructor(opts: ClientOptions) {
    this.opts = opts;
    this.baseUrl = opts.baseUrl.replace(/\/+$/, "");
    this.serviceSid = opts.serviceSid;
    this.fetchImpl = opts.fetch ?? globalThis.fetch.bind(globalThis);
  }

  private async token(): Promise<string | null> {
    const t = this.opts.token;
    if (t === undefined) return null;
    return typeof t === "function" ? await t() : t;
  }

  private async authHeaders(): Promise<Record<string, string>> {
    const token = await this.token();
    if (token) return { "X-Twilio-Token": token };
    const b = this.opts.basicAuth;
    if (b) return { Authorization: "Basic " + btoa(`${b.accountSid}:${b.authToken}`) };
    return {};
  }

  /** One API call; a non-2xx answer becomes a {@link ChatMediaError}. */
  async request<T = any>(
    method: string,
    path: string,
    init: { body?: BodyInit; headers?: Record<string, string>; signal?: AbortSignal } = {},
  ): Promise<{ status: number; body: T }> {
    const url = /^https?:\/\//.test(path) ? path : this.baseUrl + path;
    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        method,
        body: init.body,
        headers: { ...(await this.authHeaders()), ...init.headers },
        signal: init.signal,
      });
    } catch (e) {
      if (init.signal?.aborted) throw new ChatMediaAbortError();
      throw new ChatMediaError(0, null, `network error: ${(e as Error).message}`);
    }
    if (!response.ok) throw await errorOf(response);
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
  }

  private mediaPath(mediaSid: string): string {
    return `/v1/Services/${this.serviceSid}/Media/${encodeURIComponent(mediaSid)}`;
  }

  private messagesPath(channel: string): string {
    return `/v2/Services/${this.serviceSid}/Channels/${encodeURIComponent(channel)}/Messages`;
  }

  /**
   * Uploads a file as Media and resolves once it is `ready`. Up to
   * `directUploadMaxBytes` it is one POST; above, an upload session whose parts go
   * straight to storage, `parallel` at a time, each retried with backoff.
   */
  async uploadMedia(data: UploadData, opts: UploadOptions = {}): Promise<Media> {
    const filename = opts.filename ?? (data instanceof Blob && "name" in data ? String((data as File).name) : "upload");
    const contentType =
      opts.contentType || (data instanceof Blob && data.type) || "application/octet-stream";
    const blob = toBlob(data, contentType);
    if (opts.signal?.aborted) throw new ChatMediaAbortError();
    const total = blob.size;
    const report = (loaded: number) => opts.onProgress?.({ loaded: Math.min(loaded, total), total });
    report(0);
    if (total <= (this.opts.directUploadMaxBytes ?? DIRECT_MAX)) {
      const path = `/v1/Services/${this.serviceSid}/Media?Filename=${encodeURIComponent(filename)}`;
      const { body } = await this.send<Media>(
        "POST",
        this.baseUrl + path,
        blob,
        { ...(await this.authHeaders()), "Content-Type": contentType },
        (n) => report(n),
        opts.signal,
      );
      report(total);
      return body;
    }
    const { body: session } = await this.request<UploadSession>(
      "POST",
      `/v1/Services/${this.serviceSid}/MediaUploads`,
      {
        body: form([
          ["Size", String(total)],
          ["ContentType", contentType],
          ["Filename", filename],
        ]),
        signal: opts.signal,
      },
    );
    const parts = session.upload.parts;
    const etags: string[] = new Array(parts.length);
    const inFlight = new Map<number, number>();
    let done = 0;
    const progress = () => {
      let sum = done;
      for (const v of inFlight.values()) sum += v;
      report(sum);
    };
    const queue = [...parts];
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    const worker = async () => {
      for (let part = queue.shift(); part; part = queue.shift()) {
        const start = (part.part_number - 1) * session.upload.part_size;
        const slice = blob.slice(start, start + part.size);
        etags[part.part_number - 1] = await this.putPart(part, slice, controller.signal, (n) => {
          inFlight.set(part!.part_number, n);
          progress();
        });
        inFlight.delete(part.part_number);
        done += part.size;
        progress();
      }
    };
    const n = Math.max(1, Math.min(opts.parallel ?? this.opts.parallel ?? 4, parts.length));
    try {
      await Promise.all(Array.from({ length: n }, worker));
    } catch (e) {
      controller.abort();
      if (opts.signal?.aborted) throw new ChatMediaAbortError();
      throw e;
    } finally {
      opts.signal?.removeEventListener("abort", onAbort);
    }
    const pairs: [string, string][] =
      session.upload.type === "multipart" ? etags.map((e) => ["PartETag", e]) : [];
    const completed = await this.request<Media>("POST", session.links.complete ?? session.upload.complete_url, {
      body: form(pairs),
      signal: opts.signal,
    });
    let media = completed.body;
    while (media.status === "scanning" || media.status === "uploading") {
      await sleep(500, opts.signal);
      media = (await this.request<Media>("GET", media.url, { signal: opts.signal })).body;
    }
    if (media.status !== "ready") {
      throw new ChatMediaError(422, null, `media ${media.sid} is ${media.status}: ${media.status_reason ?? ""}`, null, media);
    }
    report(total);
    return media;
  }

  /** One part to its presigned URL, with the signed headers, retried with backoff. */
  private async putPart(
    part: UploadPart,
    slice: Blob,
    signal: AbortSignal,
    onBytes: (n: number) => void,
  ): Promise<string> {
    const attempts = this.opts.attempts ?? 5;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(part.headers)) {
      if (!FORBIDDEN_HEADERS.has(k.toLowerCase())) headers[k] = v;
    }
    for (let attempt = 1; ; attempt++) {
      try {
        const { etag } = await this.send(part.method, part.url, slice, headers, onBytes, signal);
        if (!etag) throw new ChatMediaError(0, null, "storage sent no ETag (is it exposed by CORS?)");
        return etag;
      } catch (e) {
        onBytes(0);
        if (signal.aborted) throw new ChatMediaAbortError();
        const status = e instanceof ChatMediaError ? e.status : 0;
        if (!retryable(status) || attempt >= attempts) throw e;
        const base = (this.opts.retryDelayMs ?? 300) * 2 ** (attempt - 1);
        await sleep(base + Math.random() * base * 0.2, signal);
      }
    }
  }

  /**
   * Sends a body and reports bytes as they go: `XMLHttpRequest` where there is one
   * (browsers: real upload progress), else `fetch` (progress when it completes).
   */
  private send<T = any>(
    method: string,
    url: string,
    body: Blob,
    headers: Record<string, string>,
    onBytes: (n: number) => void,
    signal?: AbortSignal,
  ): Promise<{ status: number; body: T; etag: string | null }> {
    if (signal?.aborted) return Promise.reject(new ChatMediaAbortError());
    const XHR = (globalThis as any).XMLHttpRequest as typeof XMLHttpRequest | undefined;
    if (XHR && !this.opts.fetch) {
      return new Promise((resolve, reject) => {
        const xhr = new XHR();
        xhr.open(method, url);
        for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
        xhr.upload.onprogress = (ev) => onBytes(ev.loaded);
        const onAbort = () => xhr.abort();
        signal?.addEventListener("abort", onAbort, { once: true });
        xhr.onabort = () => reject(new ChatMediaAbortError());
        xhr.onerror = () => reject(new ChatMediaError(0, null, `network error: ${method} ${url.split("?")[0]}`));
        xhr.onload = () => {
          signal?.removeEventListener("abort", onAbort);
          const text = xhr.responseText;
          let parsed: any = null;
          try {
            parsed = text ? JSON.parse(text) : null;
          } catch {
            /* storage answers XML */
          }
          if (xhr.status < 200 || xhr.status >= 300) {
            return reject(
              new ChatMediaError(
                xhr.status,
                typeof parsed?.code === "number" ? parsed.code : null,
                parsed?.message ?? (text.slice(0, 200) || `HTTP ${xhr.status}`),
                parsed?.more_info ?? null,
                parsed ?? text,
              ),
            );
          }
          onBytes(body.size);
          resolve({ status: xhr.status, body: parsed as T, etag: xhr.getResponseHeader("ETag") });
        };
        xhr.send(body);
      });
    }
    return (async () => {
      let response: Response;
      try {
        response = await this.fetchImpl(url, { method, body, headers, signal });
      } catch (e) {
        if (signal?.aborted) throw new ChatMediaAbortError();
        throw new ChatMediaError(0, null, `network error: ${(e as Error).message}`);
      }
      if (!response.ok) throw await errorOf(response);
      onBytes(body.size);
      const text = await response.text();
      let parsed: any = null;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        /* storage answers XML */
      }
      return { status: response.status, body: parsed as T, etag: response.headers.get("ETag") };
    })();
  }

  /** Upload + bind: the media message Flex's `SendMediaMessage` sends. */
  async sendMediaMessage(
    channel: string,
    file: UploadData,
    opts: UploadOptions & SendOptions = {},
  ): Promise<Message> {
    const media = await this.uploadMedia(file, opts);
    const pairs: [string, string][] = [["MediaSid", media.sid]];
    this.messageFields(pairs, opts);
    return (await this.request<Message>("POST", this.messagesPath(channel), { body: form(pairs) })).body;
  }

  async sendMessage(channel: string, body: string, opts: SendOptions = {}): Promise<Message> {
    const pairs: [string, string][] = [["Body", body]];
    this.messageFields(pairs, opts);
    return (await this.request<Message>("POST", this.messagesPath(channel), { body: form(pairs) })).body;
  }

  private messageFields(pairs: [string, string][], opts: SendOptions) {
    if (opts.attributes !== undefined) {
      pairs.push([
        "Attributes",
        typeof opts.attributes === "string" ? opts.attributes : JSON.stringify(opts.attributes),
      ]);
    }
    if (opts.from) pairs.push(["From", opts.from]);
  }

  async deleteMessage(channel: string, messageSid: string): Promise<void> {
    await this.request("DELETE", `${this.messagesPath(channel)}/${encodeURIComponent(messageSid)}`);
  }

  async getMedia(mediaSid: string): Promise<Media> {
    return (await this.request<Media>("GET", this.mediaPath(mediaSid))).body;
  }

  /**
   * The media's temporary download URL. Reused until shortly before it expires;
   * concurrent calls for one media share one request (single flight).
   */
  getContentTemporaryUrl(mediaSid: string): Promise<string> {
    const cached = this.urlCache.get(mediaSid);
    if (cached && cached.expires - URL_EXPIRY_MARGIN_MS > Date.now()) {
      return Promise.resolve(cached.url);
    }
    const pending = this.urlInFlight.get(mediaSid);
    if (pending) return pending;
    const p = (async () => {
      const media = await this.getMedia(mediaSid);
      const url = media.links.content_direct_temporary;
      if (!url) throw new ChatMediaError(409, null, `media ${mediaSid} is ${media.status}`, null, media);
      const expires = presignedUrlExpiry(url) ?? Date.now() + 60_000;
      this.urlCache.set(mediaSid, { url, expires });
      return url;
    })().finally(() => this.urlInFlight.delete(mediaSid));
    this.urlInFlight.set(mediaSid, p);
    return p;
  }

  /** The media's bytes; concurrent calls for one media share one download. */
  getMediaContent(mediaSid: string): Promise<Blob> {
    const pending = this.contentInFlight.get(mediaSid);
    if (pending) return pending;
    const p = (async () => {
      const url = await this.getContentTemporaryUrl(mediaSid);
      const response = await this.fetchImpl(url);
      if (!response.ok) throw await errorOf(response);
      return await response.blob();
    })().finally(() => this.contentInFlight.delete(mediaSid));
    this.contentInFlight.set(mediaSid, p);
    return p;
  }

  /** Forgets cached URLs (e.g. after a delete). */
  clearUrlCache(mediaSid?: string) {
    if (mediaSid) this.urlCache.delete(mediaSid);
    else this.urlCache.clear();
  }

  /**
   * Blocks a member the way the Flex plugin does: a form POST with the token in
   * the `Token` field, which a browser sends without a CORS preflight.
   */
  blockMember(channelSid: string, member: string): Promise<ModerationResult> {
    return this.moderate("/block-user", channelSid, member);
  }

  unblockMember(channelSid: string, member: string): Promise<ModerationResult> {
    return this.moderate("/unblock-user", channelSid, member);
  }

  private async moderate(path: string, channelSid: string, member: string): Promise<ModerationResult> {
    const pairs: [string, string][] = [
      ["chatChannelSid", channelSid],
      ["memberSid", member],
    ];
    const token = await this.token();
    if (token) {
      pairs.push(["Token", token]);
      const response = await this.fetchImpl(this.baseUrl + path, {
        method: "POST",
        body: form(pairs).toString(),
        headers: { "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8" },
      });
      if (!response.ok) throw await errorOf(response);
      return (await response.json()) as ModerationResult;
    }
    return (await this.request<ModerationResult>("POST", path, { body: form(pairs) })).body;
  }
}
