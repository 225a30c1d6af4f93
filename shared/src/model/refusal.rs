use std::fmt;

use serde::{Deserialize, Serialize};

/// The `status_reason` of a media rejected by the scanner.
pub fn infected_reason(signature: &str) -> String {
    format!("infected: {signature}")
}

/// Why an upload is refused: by the content policy before or after its bytes
/// arrive, by the checks of a finished upload, or by the virus scanner. Stored
/// with a rejected media, so asking about it again gets the same answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    MissingType,
    InvalidType(String),
    Empty,
    TooLarge {
        size: u64,
        limit: u64,
    },
    TypeNotAllowed(String),
    ExtensionBlocked(String),
    Executable {
        declared: String,
        detected: String,
    },
    Contradicts {
        declared: String,
        detected: Option<String>,
    },
    /// More bytes arrived than were declared.
    LargerThanDeclared {
        uploaded: u64,
        declared: u64,
    },
    /// Fewer bytes arrived than were declared.
    SmallerThanDeclared {
        uploaded: u64,
        declared: u64,
    },
    /// clamd found this signature.
    Infected {
        signature: String,
    },
    /// The scan could not finish; `reason` says why in words safe to show. The
    /// media is kept and scanned again.
    ScanFailed {
        reason: String,
    },
    /// The bytes could not be stored.
    UploadFailed,
    /// The media's service was deleted while it was checked.
    ServiceGone,
    /// The media could not be fetched from the URL it was handed over by
    /// (refused host or address, error status, timeout); `reason` is safe to show.
    FetchFailed {
        reason: String,
    },
    /// The bytes' SHA-256 is on the service's deny-list (an admin quarantined
    /// media with the same bytes); `reason` is the admin's.
    Quarantined {
        reason: String,
    },
    /// The service's `onMediaUpload` webhook refused it (or did not answer, and
    /// the service fails closed); `reason` is the hook's own, if it gave one.
    Hook {
        reason: String,
    },
    /// The bytes do not parse as the image type they declared and were sniffed
    /// as, so their metadata cannot be stripped: refused, never stored as they are.
    MalformedImage {
        declared: String,
    },
    /// The uploaded bytes do not hash to the `Sha256` declared at session
    /// create (both lowercase hex): refused whether or not the scan was
    /// skipped, so a declared hash of clean bytes never carries other bytes.
    Sha256Mismatch {
        declared: String,
        actual: String,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::MissingType => write!(f, "The media type is missing: send it as Content-Type"),
            Refusal::InvalidType(t) => write!(f, "'{t}' is not a media type (type/subtype)"),
            Refusal::Empty => write!(f, "The media is empty"),
            Refusal::TooLarge { size, limit } => write!(
                f,
                "The media is {size} bytes, more than this service's limit of {limit} bytes"
            ),
            Refusal::TypeNotAllowed(t) => {
                write!(f, "Media type {t} is not allowed by this service")
            }
            Refusal::ExtensionBlocked(e) => {
                write!(
                    f,
                    "Files with the extension .{e} are not allowed by this service"
                )
            }
            Refusal::Executable { declared, detected } => write!(
                f,
                "The content is an executable or script ({detected}), declared as {declared}; \
                 this service does not accept it"
            ),
            Refusal::Contradicts { declared, detected } => match detected {
                Some(d) => write!(f, "The content is {d}, not the declared {declared}"),
                None => write!(f, "The content does not look like the declared {declared}"),
            },
            Refusal::LargerThanDeclared { uploaded, declared }
            | Refusal::SmallerThanDeclared { uploaded, declared } => write!(
                f,
                "{uploaded} bytes were uploaded but {declared} were declared"
            ),
            Refusal::Infected { signature } => f.write_str(&infected_reason(signature)),
            Refusal::ScanFailed { reason } => write!(f, "scan failed: {reason}"),
            Refusal::UploadFailed => f.write_str("The media could not be stored; try again"),
            Refusal::ServiceGone => f.write_str("The media's service no longer exists"),
            Refusal::FetchFailed { reason } => {
                write!(f, "The media could not be fetched: {reason}")
            }
            Refusal::Quarantined { reason } => write!(
                f,
                "The media has the same content as media removed from this service: {reason}"
            ),
            Refusal::MalformedImage { declared } => {
                write!(f, "The content is not a valid {declared} image")
            }
            Refusal::Sha256Mismatch { declared, actual } => write!(
                f,
                "The uploaded bytes do not match the declared Sha256 {declared}: their \
                 SHA-256 is {actual}"
            ),
            Refusal::Hook { reason } => {
                write!(f, "The onMediaUpload webhook rejected the media: {reason}")
            }
        }
    }
}
