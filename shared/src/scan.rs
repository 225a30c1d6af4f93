//! clamd client: streams content to ClamAV with `zINSTREAM` and reads its verdict,
//! failing closed. Only the exact reply `stream: OK` is clean; anything else that is
//! not `stream: <name> FOUND` (size limit exceeded, errors, garbage, silence, a
//! dropped connection) is a [`ScanError`], never a clean result.
//!
//! Our own client rather than the `clamav-client` crate: that crate has no connect or
//! read timeouts, and when clamd stops a stream at `StreamMaxLength` it closes the
//! socket, so a client that writes everything before reading sees a broken pipe
//! instead of clamd's reason. This one reads the reply after a failed write.
//!
//! Protocol (clamd(8)): `zINSTREAM\0`, then chunks `<u32 big-endian length><data>`,
//! then a zero-length chunk; the reply is one NUL-terminated line.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

use crate::blob::{Blob, BlobError};

/// Bytes per INSTREAM chunk: large enough that framing costs nothing, small enough
/// that a scan holds a fixed, small buffer whatever the object size.
pub const DEFAULT_CHUNK_SIZE: usize = 256 * 1024;
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Covers each socket write and the wait for the verdict, which comes only after
/// clamd has scanned the whole stream (a few seconds for 150 MB).
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// A clamd reply is one short line; anything longer is not clamd.
const MAX_REPLY: usize = 4096;

/// Where clamd listens: `host:port` or `unix:/path/to/clamd.sock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClamdAddress {
    Tcp(String),
    Unix(PathBuf),
}

impl FromStr for ClamdAddress {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a socket path".into());
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        match s.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
                Ok(Self::Tcp(s.to_owned()))
            }
            _ => Err(format!(
                "{s:?} is neither host:port nor unix:/path/to/socket"
            )),
        }
    }
}

impl fmt::Display for ClamdAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(a) => f.write_str(a),
            Self::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// What clamd said about content it scanned completely.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum ScanVerdict {
    Clean,
    /// The signature name as clamd reports it, e.g. `Win.Test.EICAR_HDB-1` or, for
    /// our own signatures, `ChatMedia.Test.EICAR.UNOFFICIAL`. With clamd's
    /// `AlertExceedsMax`, content beyond its limits is reported here too as
    /// `Heuristics.Limits.Exceeded.*`: unscanned content is never clean.
    Infected(String),
}

impl ScanVerdict {
    pub fn is_clean(&self) -> bool {
        matches!(self, Self::Clean)
    }
}

pub use crate::model::infected_reason;

/// Why no verdict could be had. Every variant means "not known to be clean".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("cannot connect to clamd at {address}: {reason}")]
    Connect { address: String, reason: String },
    #[error("clamd did not answer within {0:?}")]
    Timeout(Duration),
    #[error("connection to clamd failed: {0}")]
    Io(String),
    /// clamd's `StreamMaxLength` is below the content size.
    #[error("clamd refused the stream: INSTREAM size limit exceeded")]
    SizeLimitExceeded,
    /// clamd answered with an `... ERROR` line.
    #[error("clamd error: {0}")]
    Clamd(String),
    #[error("unexpected reply from clamd: {0:?}")]
    UnexpectedReply(String),
    /// The content could not be read (the S3 object, a request body).
    #[error("cannot read the content to scan: {0}")]
    Source(String),
    #[error("{0}")]
    Blob(#[from] BlobError),
}

impl ScanError {
    /// What a caller or a stored record may be told about the failure: its kind,
    /// never clamd's address, socket errors or reply text.
    pub fn public_reason(&self) -> &'static str {
        match self {
            ScanError::Connect { .. } | ScanError::Io(_) => "the virus scanner is unreachable",
            ScanError::Timeout(_) => "the virus scanner did not answer in time",
            ScanError::SizeLimitExceeded => "the content exceeds the virus scanner's size limit",
            ScanError::Clamd(_) | ScanError::UnexpectedReply(_) => {
                "the virus scanner answered with an error"
            }
            ScanError::Source(_) | ScanError::Blob(_) => "the content could not be read to scan it",
        }
    }
}

pub type ScanResult = Result<ScanVerdict, ScanError>;

/// Parses one clamd INSTREAM reply, NUL terminator included, exactly.
pub fn parse_reply(reply: &[u8]) -> ScanResult {
    let Some(body) = reply.strip_suffix(b"\0") else {
        return Err(ScanError::UnexpectedReply(format!(
            "unterminated: {}",
            String::from_utf8_lossy(reply)
        )));
    };
    let text = std::str::from_utf8(body)
        .map_err(|_| ScanError::UnexpectedReply(String::from_utf8_lossy(body).into_owned()))?;
    if text.contains(['\0', '\n', '\r']) {
        return Err(ScanError::UnexpectedReply(text.to_owned()));
    }
    if text == "stream: OK" {
        return Ok(ScanVerdict::Clean);
    }
    if text.starts_with("INSTREAM size limit exceeded") {
        return Err(ScanError::SizeLimitExceeded);
    }
    if let Some(msg) = text.strip_suffix(" ERROR") {
        return Err(ScanError::Clamd(msg.trim().to_owned()));
    }
    if let Some(name) = text
        .strip_prefix("stream: ")
        .and_then(|rest| rest.strip_suffix(" FOUND"))
    {
        let name = name.trim();
        if !name.is_empty() && !name.chars().any(char::is_control) {
            return Ok(ScanVerdict::Infected(name.to_owned()));
        }
    }
    Err(ScanError::UnexpectedReply(text.to_owned()))
}

#[derive(Debug)]
struct Config {
    address: ClamdAddress,
    connect_timeout: Duration,
    read_timeout: Duration,
    chunk_size: usize,
    version_ttl: Duration,
}

/// A configured clamd; cheap to clone. Each scan opens its own connection.
#[derive(Debug, Clone)]
pub struct Scanner {
    config: Arc<Config>,
    /// clamd's signature version as last asked, and when ([`Scanner::signature_version`]).
    version: Arc<std::sync::Mutex<Option<AskedVersion>>>,
}

/// A signature version and when clamd gave it.
type AskedVersion = (std::time::Instant, Option<u64>);

/// How long clamd's signature version is trusted before it is asked again: a
/// signature update (freshclam, then clamd's reload) is noticed within this time.
pub const SIGNATURE_VERSION_TTL: Duration = Duration::from_secs(60);

/// The signature database version in clamd's `VERSION` reply
/// (`ClamAV 1.0.7/27500/Mon Nov 30 08:05:03 2026`: 27500); `None` when clamd has
/// no versioned database (only local `.ndb`/`.hdb` files, say).
pub fn parse_version(reply: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(reply.strip_suffix(b"\0").unwrap_or(reply)).ok()?;
    let mut fields = text.trim().split('/');
    let product = fields.next()?;
    if !product.starts_with("ClamAV ") {
        return None;
    }
    fields.next()?.trim().parse().ok().filter(|v| *v > 0)
}

/// Either socket type clamd listens on.
trait Socket: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Socket for T {}

impl Scanner {
    pub fn new(address: ClamdAddress) -> Self {
        Self {
            config: Arc::new(Config {
                address,
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
                read_timeout: DEFAULT_READ_TIMEOUT,
                chunk_size: DEFAULT_CHUNK_SIZE,
                version_ttl: SIGNATURE_VERSION_TTL,
            }),
            version: Arc::default(),
        }
    }

    /// How long the signature version is cached ([`SIGNATURE_VERSION_TTL`] by default).
    pub fn with_version_ttl(self, ttl: Duration) -> Self {
        self.map_config(|c| c.version_ttl = ttl)
    }

    pub fn with_timeouts(self, connect: Duration, read: Duration) -> Self {
        self.map_config(|c| {
            c.connect_timeout = connect;
            c.read_timeout = read;
        })
    }

    pub fn with_chunk_size(self, bytes: usize) -> Self {
        self.map_config(|c| c.chunk_size = bytes.clamp(1, 64 * 1024 * 1024))
    }

    fn map_config(self, f: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config {
            address: self.config.address.clone(),
            ..*self.config
        };
        f(&mut config);
        Self {
            config: Arc::new(config),
            version: Arc::default(),
        }
    }

    pub fn address(&self) -> &ClamdAddress {
        &self.config.address
    }

    pub fn read_timeout(&self) -> Duration {
        self.config.read_timeout
    }

    async fn connect(&self) -> Result<Box<dyn Socket>, ScanError> {
        let address = &self.config.address;
        let failed = |reason: String| ScanError::Connect {
            address: address.to_string(),
            reason,
        };
        let connecting = async {
            match address {
                ClamdAddress::Tcp(a) => TcpStream::connect(a.as_str()).await.map(|s| {
                    let _ = s.set_nodelay(true);
                    Box::new(s) as Box<dyn Socket>
                }),
                ClamdAddress::Unix(p) => UnixStream::connect(p)
                    .await
                    .map(|s| Box::new(s) as Box<dyn Socket>),
            }
        };
        match timeout(self.config.connect_timeout, connecting).await {
            Ok(Ok(socket)) => Ok(socket),
            Ok(Err(e)) => Err(failed(e.to_string())),
            Err(_) => Err(failed(format!(
                "timed out after {:?}",
                self.config.connect_timeout
            ))),
        }
    }

    /// Writes `data` or fails after the read timeout (clamd stopped reading).
    async fn write(&self, socket: &mut Box<dyn Socket>, data: &[u8]) -> Result<(), ScanError> {
        match timeout(self.config.read_timeout, socket.write_all(data)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ScanError::Io(e.to_string())),
            Err(_) => Err(ScanError::Timeout(self.config.read_timeout)),
        }
    }

    /// Reads one NUL-terminated reply (or what came before EOF), within the read timeout.
    async fn read_reply(&self, socket: &mut Box<dyn Socket>) -> Result<Vec<u8>, ScanError> {
        let reading = async {
            let mut reply = Vec::with_capacity(64);
            let mut buf = [0u8; 512];
            while !reply.ends_with(b"\0") && reply.len() < MAX_REPLY {
                match socket.read(&mut buf).await? {
                    0 => break,
                    n => reply.extend_from_slice(&buf[..n]),
                }
            }
            Ok::<_, std::io::Error>(reply)
        };
        match timeout(self.config.read_timeout, reading).await {
            Ok(Ok(reply)) if reply.is_empty() => Err(ScanError::Io(
                "clamd closed the connection without a reply".into(),
            )),
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => Err(ScanError::Io(e.to_string())),
            Err(_) => Err(ScanError::Timeout(self.config.read_timeout)),
        }
    }

    /// `zPING` → `PONG`: clamd is up and answering.
    pub async fn ping(&self) -> Result<(), ScanError> {
        let mut socket = self.connect().await?;
        self.write(&mut socket, b"zPING\0").await?;
        let reply = self.read_reply(&mut socket).await?;
        if reply == b"PONG\0" {
            Ok(())
        } else {
            Err(ScanError::UnexpectedReply(
                String::from_utf8_lossy(&reply).into_owned(),
            ))
        }
    }

    /// clamd's signature database version ([`parse_version`]), asked with
    /// `zVERSION` at most once per version TTL; `Ok(None)` when clamd has no
    /// versioned database. What a scan-skip compares with ([`crate::upload`]).
    pub async fn signature_version(&self) -> Result<Option<u64>, ScanError> {
        let cached = *self
            .version
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, version)) = cached {
            if at.elapsed() < self.config.version_ttl {
                return Ok(version);
            }
        }
        let mut socket = self.connect().await?;
        self.write(&mut socket, b"zVERSION\0").await?;
        let version = parse_version(&self.read_reply(&mut socket).await?);
        *self
            .version
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((std::time::Instant::now(), version));
        Ok(version)
    }

    /// Streams everything `content` yields to clamd in fixed-size chunks and returns
    /// its verdict. Memory use is one chunk, whatever the content size.
    pub async fn scan_reader<R: AsyncRead + Unpin>(&self, mut content: R) -> ScanResult {
        let mut socket = self.connect().await?;
        let sent = self.send_stream(&mut socket, &mut content).await;
        match sent {
            Ok(()) => parse_reply(&self.read_reply(&mut socket).await?),
            // The source failed: clamd saw a truncated stream, its verdict means nothing.
            Err(e @ (ScanError::Source(_) | ScanError::Timeout(_))) => Err(e),
            // clamd hung up mid-stream; it says why first (e.g. the size limit).
            Err(write_error) => match self.read_reply(&mut socket).await {
                Ok(reply) => match parse_reply(&reply) {
                    Ok(ScanVerdict::Clean) => Err(ScanError::UnexpectedReply(
                        "stream: OK before the stream was complete".into(),
                    )),
                    other => other,
                },
                Err(_) => Err(write_error),
            },
        }
    }

    /// Sends `content` as INSTREAM chunks. Two buffers take turns so reading the
    /// next chunk (from S3, say) overlaps with writing the last one to clamd.
    async fn send_stream<R: AsyncRead + Unpin>(
        &self,
        socket: &mut Box<dyn Socket>,
        content: &mut R,
    ) -> Result<(), ScanError> {
        self.write(socket, b"zINSTREAM\0").await?;
        let chunk = self.config.chunk_size;
        let (full_tx, mut full) = mpsc::channel::<(Vec<u8>, usize)>(2);
        let (empty_tx, mut empty) = mpsc::channel::<Vec<u8>>(2);
        for _ in 0..2 {
            // Each buffer: 4 bytes of length prefix, then the chunk, sent with one write.
            let _ = empty_tx.try_send(vec![0u8; 4 + chunk]);
        }
        let reading = async move {
            while let Some(mut buf) = empty.recv().await {
                let filled = self.fill(content, &mut buf[4..]).await?;
                if filled == 0 || full_tx.send((buf, filled)).await.is_err() || filled < chunk {
                    break;
                }
            }
            Ok::<_, ScanError>(())
            // Dropping `full_tx` here tells the writer the stream is complete.
        };
        let writing = async move {
            while let Some((mut buf, filled)) = full.recv().await {
                buf[..4].copy_from_slice(&(filled as u32).to_be_bytes());
                self.write(socket, &buf[..4 + filled]).await?;
                let _ = empty_tx.send(buf).await;
            }
            self.write(socket, &0u32.to_be_bytes()).await
        };
        // The first error wins and abandons the other side.
        tokio::try_join!(reading, writing).map(|_| ())
    }

    /// Reads until `buf` is full or the content ends; the byte count read.
    async fn fill<R: AsyncRead + Unpin>(
        &self,
        content: &mut R,
        buf: &mut [u8],
    ) -> Result<usize, ScanError> {
        let mut filled = 0;
        while filled < buf.len() {
            let read = timeout(self.config.read_timeout, content.read(&mut buf[filled..]))
                .await
                .map_err(|_| {
                    ScanError::Source(format!("no data for {:?}", self.config.read_timeout))
                })?
                .map_err(|e| ScanError::Source(e.to_string()))?;
            if read == 0 {
                break;
            }
            filled += read;
        }
        Ok(filled)
    }

    /// Scans `bytes` already in memory (a small direct upload).
    pub async fn scan_bytes(&self, bytes: &[u8]) -> ScanResult {
        self.scan_reader(bytes).await
    }

    /// Streams the S3 object `key` from `blob` through clamd without holding it in memory.
    pub async fn scan_object(&self, blob: &Blob, key: &str) -> ScanResult {
        let object = blob
            .client()
            .get_object()
            .bucket(blob.bucket())
            .key(key)
            .send()
            .await
            .map_err(BlobError::from_sdk)?;
        self.scan_reader(object.body.into_async_read()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_only_for_the_exact_ok_reply() {
        assert_eq!(parse_reply(b"stream: OK\0"), Ok(ScanVerdict::Clean));
        for reply in [
            &b"stream: OK"[..],
            b"stream: OK\0\0",
            b"stream:OK\0",
            b"stream: ok\0",
            b" stream: OK\0",
            b"stream: OK \0",
            b"OK\0",
            b"stream: OK\nstream: OK\0",
            b"\0",
            b"",
            b"PONG\0",
        ] {
            let parsed = parse_reply(reply);
            assert!(
                matches!(parsed, Err(ScanError::UnexpectedReply(_))),
                "{reply:?} parsed as {parsed:?}"
            );
        }
    }

    #[test]
    fn the_signature_version_is_the_middle_field() {
        assert_eq!(
            parse_version(b"ClamAV 1.0.7/27500/Mon Nov 30 08:05:03 2026\0"),
            Some(27500)
        );
        assert_eq!(parse_version(b"ClamAV 1.4.6/1/x"), Some(1));
        for reply in [
            &b"ClamAV 1.4.6\0"[..],
            b"ClamAV 1.4.6/0/x\0",
            b"ClamAV 1.4.6/abc/x\0",
            b"Other 1/27500/x\0",
            b"",
            b"\xff/1/\0",
        ] {
            assert_eq!(parse_version(reply), None, "{reply:?}");
        }
    }

    #[test]
    fn found_gives_the_signature_name() {
        assert_eq!(
            parse_reply(b"stream: ChatMedia.Test.EICAR.UNOFFICIAL FOUND\0"),
            Ok(ScanVerdict::Infected(
                "ChatMedia.Test.EICAR.UNOFFICIAL".into()
            ))
        );
        assert_eq!(
            parse_reply(b"stream: Heuristics.Limits.Exceeded.MaxFileSize FOUND\0"),
            Ok(ScanVerdict::Infected(
                "Heuristics.Limits.Exceeded.MaxFileSize".into()
            ))
        );
        assert!(matches!(
            parse_reply(b"stream:  FOUND\0"),
            Err(ScanError::UnexpectedReply(_))
        ));
        assert!(matches!(
            parse_reply(b"stream: Eicar FOUND"),
            Err(ScanError::UnexpectedReply(_))
        ));
    }

    #[test]
    fn size_limit_and_errors_are_never_clean() {
        assert_eq!(
            parse_reply(b"INSTREAM size limit exceeded. ERROR\0"),
            Err(ScanError::SizeLimitExceeded)
        );
        assert_eq!(
            parse_reply(b"INSTREAM size limit exceeded\0"),
            Err(ScanError::SizeLimitExceeded)
        );
        assert_eq!(
            parse_reply(b"stream: Can't allocate memory ERROR\0"),
            Err(ScanError::Clamd("stream: Can't allocate memory".into()))
        );
        assert_eq!(
            parse_reply(b"UNKNOWN COMMAND\0"),
            Err(ScanError::UnexpectedReply("UNKNOWN COMMAND".into()))
        );
        assert!(parse_reply(b"stream: OK\xff\0").is_err());
    }

    #[test]
    fn addresses_parse() {
        assert_eq!(
            "127.0.0.1:3310".parse(),
            Ok(ClamdAddress::Tcp("127.0.0.1:3310".into()))
        );
        assert_eq!(
            "clamd.internal:3310".parse(),
            Ok(ClamdAddress::Tcp("clamd.internal:3310".into()))
        );
        assert_eq!(
            "[::1]:3310".parse(),
            Ok(ClamdAddress::Tcp("[::1]:3310".into()))
        );
        assert_eq!(
            "unix:/run/clamav/clamd.ctl".parse(),
            Ok(ClamdAddress::Unix("/run/clamav/clamd.ctl".into()))
        );
        for bad in [
            "",
            "localhost",
            "localhost:",
            ":3310",
            "host:0",
            "host:99999",
            "unix:",
        ] {
            assert!(bad.parse::<ClamdAddress>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn public_reasons_name_no_address_or_reply() {
        let leaky = [
            ScanError::Connect {
                address: "10.1.2.3:3310".into(),
                reason: "connection refused".into(),
            },
            ScanError::Io("broken pipe at 10.1.2.3".into()),
            ScanError::Clamd("lstat() failed on /var/lib/clamav".into()),
            ScanError::UnexpectedReply("garbage from 10.1.2.3".into()),
            ScanError::Timeout(Duration::from_secs(1)),
            ScanError::SizeLimitExceeded,
        ];
        for e in leaky {
            let reason = e.public_reason();
            assert!(
                !reason.contains("10.1.2.3") && !reason.contains('/'),
                "{reason}"
            );
        }
        assert!(ScanError::SizeLimitExceeded
            .public_reason()
            .contains("size limit"));
        assert_eq!(infected_reason("X.UNOFFICIAL"), "infected: X.UNOFFICIAL");
    }
}
