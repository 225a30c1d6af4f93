//! chat-media's common crate: domain types that parse, the DynamoDB and S3 stores,
//! authentication and permissions, and the HTTP plumbing every function shares.

pub mod access;
pub mod auth;
pub mod blob;
pub mod cleanup;
pub mod config;
pub mod disposition;
pub mod error;
pub mod http;
pub mod identity;
pub mod metrics;
pub mod model;
pub mod params;
pub mod permission;
pub mod policy;
pub mod scan;
pub mod sid;
pub mod store;
pub mod telemetry;
pub mod upload;

pub use auth::{Credentials, Principal};
pub use config::{AppState, Settings};
pub use error::{ApiError, ApiResult};
pub use identity::Identity;
