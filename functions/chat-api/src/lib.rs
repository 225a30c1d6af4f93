//! chat-api: the Chat v2 resources a client needs — services, roles, channels,
//! members, users, and reading messages. Admins may do everything; users read the
//! channels they belong to. Also the deny-list of takedown by hash
//! (`/v1/Services/{ServiceSid}/QuarantinedHashes`).

mod channel_webhooks;
mod channels;
mod members;
mod messages;
mod quarantined_hashes;
mod roles;
mod services;
mod users;

use axum::routing::get;
use axum::Router;
use chat_media::AppState;

/// The routes of this function, without state or fallbacks (the local runner merges them).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v2/Services", get(services::list).post(services::create))
        .route(
            "/v2/Services/{service}",
            get(services::fetch)
                .post(services::update)
                .delete(services::delete),
        )
        .route(
            "/v2/Services/{service}/Roles",
            get(roles::list).post(roles::create),
        )
        .route(
            "/v2/Services/{service}/Roles/{role}",
            get(roles::fetch).post(roles::update).delete(roles::delete),
        )
        .route(
            "/v2/Services/{service}/Channels",
            get(channels::list).post(channels::create),
        )
        .route(
            "/v2/Services/{service}/Channels/{channel}",
            get(channels::fetch)
                .post(channels::update)
                .delete(channels::delete),
        )
        .route(
            "/v2/Services/{service}/Channels/{channel}/Webhooks",
            get(channel_webhooks::list).post(channel_webhooks::create),
        )
        .route(
            "/v2/Services/{service}/Channels/{channel}/Webhooks/{webhook}",
            get(channel_webhooks::fetch)
                .post(channel_webhooks::update)
                .delete(channel_webhooks::delete),
        )
        .route(
            "/v2/Services/{service}/Channels/{channel}/Members",
            get(members::list).post(members::add),
        )
        .route(
            "/v2/Services/{service}/Channels/{channel}/Members/{member}",
            get(members::fetch).delete(members::remove),
        )
        .route(
            "/v2/Services/{service}/Channels/{channel}/Messages",
            get(messages::list),
        )
        .route(
            "/v2/Services/{service}/Channels/{channel}/Messages/{message}",
            get(messages::fetch).post(messages::update),
        )
        .route(
            "/v2/Services/{service}/Users",
            get(users::list).post(users::create),
        )
        .route(
            "/v2/Services/{service}/Users/{user}",
            get(users::fetch).post(users::update).delete(users::delete),
        )
        .route(
            "/v2/Services/{service}/Users/{user}/Channels",
            get(users::channels),
        )
        .route(
            "/v1/Services/{service}/QuarantinedHashes",
            get(quarantined_hashes::list),
        )
        .route(
            "/v1/Services/{service}/QuarantinedHashes/{sha256}",
            get(quarantined_hashes::fetch).delete(quarantined_hashes::lift),
        )
}

/// The function's full router, as Lambda serves it.
pub fn router(state: AppState) -> Router {
    chat_media::http::with_fallbacks(routes()).with_state(state)
}

pub(crate) use chat_media::http::params::{
    attributes_param, attributes_update, date_param, text_param,
};
