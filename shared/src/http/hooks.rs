//! The webhook side of a request (s20-hooks): Twilio's `X-Twilio-Webhook-Enabled`
//! header and the [`Hooks`] of the action a handler is about to take.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::error::ApiError;
use super::scope::Caller;
use crate::access::AccessError;
use crate::config::AppState;
use crate::dispatch::Hooks;
use crate::identity::Identity;
use crate::model::Service;
use crate::sid::ServiceSid;
use crate::webhook::{Firing, ENABLED_HEADER};

/// Whether the request carries `X-Twilio-Webhook-Enabled: true`: admin REST
/// actions fire post-events only then, as Twilio's.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebhookEnabled(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for WebhookEnabled {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(&parts.headers))
    }
}

impl WebhookEnabled {
    pub fn of(headers: &axum::http::HeaderMap) -> Self {
        Self(
            headers
                .get(ENABLED_HEADER)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true")),
        )
    }

    /// Who fires: the user `identity`, or admin REST when `None`.
    pub fn firing(self, identity: Option<&Identity>) -> Firing {
        match identity {
            Some(_) => Firing::User,
            None => Firing::Rest {
                webhook_enabled: self.0,
            },
        }
    }

    /// The hooks of an admin action on `service`, whose record the handler has read.
    pub fn admin_hooks(self, service: &Service) -> Hooks {
        Hooks::new(
            service.sid.clone(),
            service.webhooks.clone(),
            self.firing(None),
            None,
        )
    }

    /// The hooks of an action on `service` by `identity` (a user) or an admin
    /// (`None`); reads the service's webhook settings.
    pub async fn hooks(
        self,
        state: &AppState,
        service: &ServiceSid,
        identity: Option<&Identity>,
    ) -> Result<Hooks, ApiError> {
        let record = state
            .store
            .get_service(service)
            .await?
            .ok_or_else(|| AccessError::ServiceNotFound(service.clone()))?;
        Ok(Hooks::new(
            service.clone(),
            record.webhooks,
            self.firing(identity),
            identity.cloned(),
        ))
    }

    /// As [`WebhookEnabled::hooks`] for the caller of a channel scope.
    pub async fn hooks_of(
        self,
        state: &AppState,
        service: &ServiceSid,
        caller: &Caller,
    ) -> Result<Hooks, ApiError> {
        self.hooks(state, service, caller.identity()).await
    }
}
