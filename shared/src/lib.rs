//! chat-media's common crate: domain types that parse, the DynamoDB and S3
//! stores, the virus scanner, the upload pipeline, authentication and
//! permissions, and the HTTP edge every function shares.
//!
//! # Layout
//!
//! | module | owns |
//! |---|---|
//! | [`limits`] | every length limit on a caller's text (characters, and bytes where it is part of a key) |
//! | [`sid`], [`identity`], [`filename`] | values parsed once: SIDs, identities, filenames |
//! | [`digest`] | SHA-256 of content at assembly speed (aws-lc-rs) in every build |
//! | [`imagemeta`] | stripping EXIF/XMP/IPTC from JPEG, PNG and WebP, EXIF/XMP from HEIC/AVIF (in place), without touching the pixels |
//! | [`thumbnail`] | thumbnail sizes, keys and bounded decoding (the `image` crate) |
//! | [`signature`] | Twilio's `X-Twilio-Signature` (HMAC-SHA1), to sign webhooks and check Twilio's |
//! | [`permission`] | Twilio's permissions and default roles |
//! | [`model`] | the records (Service, Role, Channel, Member, User, Message, Media, Refusal), their constructors and Twilio JSON views |
//! | [`store`] | DynamoDB: one table, conditional writes, transactions, paging |
//! | [`blob`] | S3: objects, multipart, presigned URLs |
//! | [`scan`] | the clamd client (INSTREAM), failing closed |
//! | [`policy`] | what a service accepts: size, type, extension, magic bytes |
//! | [`disposition`] | how a download presents itself (Content-Disposition/Type) |
//! | [`auth`] | who is calling: Basic credentials or access tokens |
//! | [`fetch`] | fetching a URL we were handed: allowed hosts, no internal addresses, bounded redirects and timeouts |
//! | [`flex`] | Flex's own tokens, checked with Twilio's token validation API (cached) |
//! | [`config`] | all environment reading, once per cold start, into [`AppState`] |
//! | [`upload`] | finalizing uploads: checks, the scan state machine, refusals |
//! | [`takedown`] | quarantining media and the per-service SHA-256 deny-list |
//! | [`access`] | resolving channels, members, users; who may act on them |
//! | [`webhook`] | calling webhooks as Twilio: signed, retried, bounded; pre-event decisions |
//! | [`dispatch`] | delivering the post-event outbox, at least once, in order per channel |
//! | [`inbound`] | Twilio's inbound messaging webhook and uploads by URL: the durable job that fetches media and posts the messages |
//! | [`cleanup`] | deleting S3 objects after their records, and the sweep of leftovers |
//! | [`http`] | the edge: extractors, scopes, forms, paging, [`ApiError`]; who may read a media (get-media and get-thumbnail) |
//! | [`metrics`], [`telemetry`] | call counting and logging set-up |
//!
//! # Layering
//!
//! Each layer uses only the layers above it in this list, never the other way
//! round (`scripts/check-layers` fails the build on an arrow back or a cycle):
//!
//! 1. `limits`, `sid`, `identity`, `filename`, `permission`, `model`, `signature`, `digest`,
//!    `imagemeta`, `thumbnail`
//! 2. `store`, `blob`, `scan`, `policy`, `disposition`, `auth`, `flex`, `metrics`, `telemetry`, `webhook`, `fetch`
//! 3. `config` (the state that bundles the clients), `cleanup`, `dispatch`
//! 4. `upload`, `access`, `inbound`, `takedown`
//! 5. `http`
//!
//! Only `http` knows axum. Domain modules return domain errors ([`store::StoreError`],
//! [`blob::BlobError`], [`scan::ScanError`], [`model::Refusal`], [`upload::FinalizeError`],
//! [`auth::AuthError`], [`access::AccessError`]); `http::error` turns them into Twilio error
//! bodies, and no SDK, clamd or network text reaches a client.

pub mod access;
pub mod auth;
pub mod blob;
pub mod cleanup;
pub mod config;
pub mod digest;
pub mod dispatch;
pub mod disposition;
pub mod fetch;
pub mod filename;
pub mod flex;
pub mod http;
pub mod identity;
pub mod imagemeta;
pub mod inbound;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod permission;
pub mod policy;
pub mod scan;
pub mod sid;
pub mod signature;
pub mod store;
pub mod takedown;
pub mod telemetry;
pub mod thumbnail;
pub mod upload;
pub mod webhook;

pub use auth::{Credentials, Principal};
pub use config::{AppState, Settings};
pub use http::{ApiError, ApiResult};
pub use identity::Identity;
