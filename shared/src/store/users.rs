use std::collections::HashMap;

use super::items::{keyed, s};
use super::page::Query;
use super::{keys, Page, PageRequest, Store, StoreResult};
use crate::identity::Identity;
use crate::model::{OutboxEvent, User};
use crate::sid::{ServiceSid, UserSid};

fn user_item(user: &User) -> super::items::Item {
    let order = format!("{}#{}", user.service_sid, user.identity);
    keyed(
        user,
        user.service_sid.as_str(),
        &keys::user(&user.identity),
        Some((user.role_sid.as_str(), &order)),
    )
}

impl Store {
    /// Replaces a user if it is still as `read` (same `date_updated`).
    pub async fn replace_user_unchanged(&self, user: &User, read: &User) -> StoreResult<()> {
        self.replace_user_with_events(user, read, &[]).await
    }

    /// As [`Store::replace_user_unchanged`], with the post-events reporting it.
    pub async fn replace_user_with_events(
        &self,
        user: &User,
        read: &User,
        events: &[OutboxEvent],
    ) -> StoreResult<()> {
        let mut ops = vec![self.put_op_values(
            user_item(user),
            "attribute_exists(PK) AND date_updated = :updated",
            vec![(":updated", super::items::date_value(read.date_updated))],
        )];
        ops.extend(events.iter().map(|e| self.outbox_op(e)));
        self.transact(ops).await
    }

    /// Deletes a user and its SID pointer (its memberships first go through
    /// [`Store::remove_user_memberships`]).
    pub async fn delete_user(&self, user: &User) -> StoreResult<()> {
        let service = user.service_sid.as_str();
        self.transact(vec![
            self.delete_op(
                service,
                &keys::user(&user.identity),
                Some("attribute_exists(PK)"),
            ),
            self.delete_op(service, &keys::user_sid(&user.sid), None),
        ])
        .await
    }

    /// Creates a user and its SID pointer; fails its condition if the identity exists.
    pub async fn create_user(&self, user: &User) -> StoreResult<()> {
        self.create_user_with_events(user, &[]).await
    }

    /// As [`Store::create_user`], with the post-events reporting it in the same transaction.
    pub async fn create_user_with_events(
        &self,
        user: &User,
        events: &[OutboxEvent],
    ) -> StoreResult<()> {
        let service = user.service_sid.as_str();
        let item = user_item(user);
        let pointer = HashMap::from([
            (keys::PK.to_owned(), s(service)),
            (keys::SK.to_owned(), s(keys::user_sid(&user.sid))),
            ("identity".to_owned(), s(user.identity.as_str())),
        ]);
        let mut ops = vec![
            self.put_op(item, Some("attribute_not_exists(PK)")),
            self.put_op(pointer, Some("attribute_not_exists(PK)")),
        ];
        ops.extend(events.iter().map(|e| self.outbox_op(e)));
        self.transact(ops).await
    }

    pub async fn get_user(
        &self,
        service: &ServiceSid,
        identity: &Identity,
    ) -> StoreResult<Option<User>> {
        self.get(service.as_str(), &keys::user(identity), true)
            .await
    }

    pub async fn get_user_by_sid(
        &self,
        service: &ServiceSid,
        sid: &UserSid,
    ) -> StoreResult<Option<User>> {
        #[derive(serde::Deserialize)]
        struct Pointer {
            identity: Identity,
        }
        let pointer: Option<Pointer> = self
            .get(service.as_str(), &keys::user_sid(sid), true)
            .await?;
        match pointer {
            Some(p) => self.get_user(service, &p.identity).await,
            None => Ok(None),
        }
    }

    pub async fn list_users(
        &self,
        service: &ServiceSid,
        req: &PageRequest,
    ) -> StoreResult<Page<User>> {
        self.query_page(
            Query {
                index: false,
                partition: service.as_str(),
                item_sk: keys::USER_PREFIX,
                forward: true,
                filter: None,
            },
            req,
        )
        .await
    }
}
