use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{iso, Refusal, ViewCtx};
use crate::filename::Filename;
use crate::identity::Identity;
use crate::sid::{ChannelSid, MediaSid, MessageSid, ServiceSid};

/// Where an upload is in its life; only `Ready` media can be bound or downloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaStatus {
    Uploading,
    Scanning,
    Ready,
    Rejected,
    Failed,
    /// Taken down by an admin: its object is deleted and its hash deny-listed.
    Quarantined,
    /// Its message outlived the service's `Media.RetentionDays`: its object is
    /// deleted, its message stays.
    Expired,
}

impl MediaStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaStatus::Uploading => "uploading",
            MediaStatus::Scanning => "scanning",
            MediaStatus::Ready => "ready",
            MediaStatus::Rejected => "rejected",
            MediaStatus::Failed => "failed",
            MediaStatus::Quarantined => "quarantined",
            MediaStatus::Expired => "expired",
        }
    }
}

/// An immutable uploaded object and, once bound, the message that carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Media {
    pub sid: MediaSid,
    pub service_sid: ServiceSid,
    /// The uploader's identity, or "system" for admins.
    pub author: Identity,
    pub content_type: String,
    pub filename: Option<Filename>,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// SHA-256 of the bytes as uploaded, when metadata stripping changed them
    /// (`sha256` is then of the stored, stripped bytes); the deny-list matches both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_sha256: Option<String>,
    pub status: MediaStatus,
    /// Why the media was rejected or failed, for the caller and the logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// The S3 key; includes service and media SID and is never reused.
    pub object_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_sid: Option<MessageSid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_sid: Option<ChannelSid>,
    pub date_created: DateTime<Utc>,
    pub date_upload_updated: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
    /// When an unbound media is swept (epoch seconds); cleared when bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// The upload session while the bytes go straight to S3 (`uploading` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<UploadSession>,
    /// Lease (epoch seconds) of whoever is finalizing the upload, so the complete
    /// call and the S3 event never both do the work; an expired lease is free.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finalizing_until: Option<i64>,
    /// Whether the media counts against its author's unbound-upload limit; cleared
    /// (and the author's counter decremented) in the transaction that binds,
    /// rejects or sweeps it. Admin uploads hold no slot.
    #[serde(default)]
    pub holds_slot: bool,
    /// Why the media was rejected or failed, so a repeated complete call answers
    /// the same; `status_reason` is its text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<Refusal>,
    /// What the upload was charged against the service's quotas when it was
    /// created; given back in the transaction that rejects, sweeps or deletes it.
    #[serde(
        default,
        rename = "quota_charge",
        skip_serializing_if = "Option::is_none"
    )]
    pub quota: Option<QuotaCharge>,
}

/// The bytes an upload counts for in its service's quotas (issue 17 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaCharge {
    /// The declared size (finalize refuses any other real size).
    pub bytes: u64,
    /// The start (epoch seconds) of the author's quota window the bytes count
    /// in; `None` when no per-identity quota applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<i64>,
    /// Counted in the service's stored total (`Media.QuotaBytesPerService` was on).
    #[serde(default)]
    pub service: bool,
}

/// What an upload declares when it starts.
#[derive(Debug, Clone)]
pub struct NewUpload {
    pub author: Identity,
    pub content_type: String,
    pub filename: Option<Filename>,
    pub size: u64,
    /// How the bytes reach S3 (`None` for a direct upload through the function).
    pub upload: Option<UploadSession>,
    /// Whether the upload counts against its author's unbound-upload limit.
    pub holds_slot: bool,
}

/// How the bytes of an upload session reach S3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadSession {
    /// The S3 multipart upload, or `None` for a single presigned PUT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multipart_upload_id: Option<String>,
    /// Bytes per part (the last part holds the rest).
    pub part_size: u64,
    pub part_count: u32,
    /// The SHA-256 the client declared for the whole file as uploaded (before
    /// any metadata stripping), the way S3 takes a checksum: finalize refuses
    /// bytes with another hash, and skips the scan of declared bytes that the
    /// service's hash index lists as scanned clean (issue 17 §3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_sha256: Option<super::Sha256>,
}

impl UploadSession {
    /// Length of part `n` (1-based) of an upload of `size` bytes.
    pub fn part_len(&self, size: u64, n: u32) -> u64 {
        let start = self.part_size * u64::from(n - 1);
        self.part_size.min(size.saturating_sub(start))
    }
}

impl Media {
    /// A new `uploading` media, swept at `expires_at` unless finished by then;
    /// `finalizing_until` is the lease of a finalizer that starts at once.
    pub fn new_upload(
        sid: MediaSid,
        service_sid: ServiceSid,
        new: NewUpload,
        expires_at: i64,
        finalizing_until: Option<i64>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            object_key: Self::object_key_for(&service_sid, &sid),
            sid,
            service_sid,
            author: new.author,
            content_type: new.content_type,
            filename: new.filename,
            size: new.size,
            sha256: None,
            original_sha256: None,
            status: MediaStatus::Uploading,
            status_reason: None,
            message_sid: None,
            channel_sid: None,
            date_created: now,
            date_upload_updated: now,
            date_updated: now,
            expires_at: Some(expires_at),
            upload: new.upload,
            finalizing_until,
            holds_slot: new.holds_slot,
            refusal: None,
            quota: None,
        }
    }

    /// Why the media was refused, if it was.
    pub fn refusal(&self) -> Option<&Refusal> {
        self.refusal.as_ref()
    }

    pub fn object_key_for(service: &ServiceSid, sid: &MediaSid) -> String {
        format!("services/{service}/media/{sid}")
    }

    pub fn path(&self) -> String {
        format!("/v1/Services/{}/Media/{}", self.service_sid, self.sid)
    }

    /// The Media JSON; `temporary_url` is only given to callers allowed to download.
    pub fn to_json(&self, ctx: ViewCtx<'_>, temporary_url: Option<&str>) -> Value {
        let url = ctx.url(&self.path());
        json!({
            "sid": self.sid,
            "account_sid": ctx.account_sid,
            "service_sid": self.service_sid,
            "channel_sid": self.channel_sid,
            "message_sid": self.message_sid,
            "author": self.author,
            "category": "media",
            "content_type": self.content_type,
            "filename": self.filename,
            "size": self.size,
            "sha256": self.sha256,
            "original_sha256": self.original_sha256.as_ref().or(self.sha256.as_ref()),
            "status": self.status.as_str(),
            "status_reason": self.status_reason,
            "date_created": iso(&self.date_created),
            "date_upload_updated": iso(&self.date_upload_updated),
            "date_updated": iso(&self.date_updated),
            "url": url,
            "links": {
                "content": format!("{url}/Content"),
                "content_direct_temporary": temporary_url,
                "thumbnail": crate::thumbnail::source_format(&self.content_type)
                    .map(|_| format!("{url}/Thumbnail")),
            },
        })
    }
}
