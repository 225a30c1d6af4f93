//! The integration tests: one binary, one process, so the harness's globals (the
//! tracing subscriber, the test table and bucket, the sweep lock) exist once. Each
//! module is one area of the API; every test makes its own service, so they run in
//! parallel. Tests that run a table-wide sweep, or rely on what a sweep would
//! change, take `chat_media_tests::sweeping()` / `no_sweeps()`.

mod auth_and_errors;
mod authz_matrix;
mod channels_members_users;
mod cli;
mod demo;
mod faults;
mod flex_tokens;
mod hardening_input;
mod images;
mod inbound;
mod js_client;
mod list_filters;
mod media_download;
mod media_set;
mod media_upload;
mod membership_oracle;
mod message_deletion;
mod messages;
mod moderation;
mod openapi;
mod performance;
mod quotas;
mod reserved_identity;
mod retention;
mod scan;
mod scan_outage;
mod scan_skip;
mod scan_uploads;
mod secrets;
mod service_params;
mod services_and_roles;
mod signature;
mod takedown;
mod template_defaults;
mod template_routes;
mod twilio_clients;
mod twilio_codes;
mod twilio_operations;
mod webhook_events;
mod webhooks;
