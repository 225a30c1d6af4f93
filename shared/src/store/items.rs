//! How records become DynamoDB items: attribute helpers, the keyed item of each
//! record, and the items and conditions several repository modules share
//! (media, pending deletions, the unbound-upload slot condition).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{keys, StoreError, StoreResult};
use crate::model::{Media, Message};

pub type Item = HashMap<String, AttributeValue>;

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn to_item<T: Serialize>(record: &T) -> Item {
    serde_dynamo::to_item(record).expect("records serialize to DynamoDB items")
}

/// A value as records store it (the same serialization as the record's field).
pub(super) fn to_value<T: Serialize>(value: T) -> AttributeValue {
    serde_dynamo::to_attribute_value(value).expect("record fields serialize")
}

pub(super) fn from_item<T: DeserializeOwned>(item: Item) -> StoreResult<T> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Other(format!("corrupt record: {e}")))
}

/// A date attribute as records store it.
pub(super) fn date_value(date: DateTime<Utc>) -> AttributeValue {
    to_value(date)
}

/// A record with its keys, ready to put.
pub(super) fn keyed<T: Serialize>(
    record: &T,
    pk: &str,
    sk: &str,
    gsi: Option<(&str, &str)>,
) -> Item {
    let mut item = to_item(record);
    item.insert(keys::PK.into(), s(pk));
    item.insert(keys::SK.into(), s(sk));
    if let Some((gpk, gsk)) = gsi {
        item.insert(keys::GSI1PK.into(), s(gpk));
        item.insert(keys::GSI1SK.into(), s(gsk));
    }
    item
}

pub(super) fn key(pk: &str, sk: &str) -> Item {
    HashMap::from([(keys::PK.into(), s(pk)), (keys::SK.into(), s(sk))])
}

/// A media item; an unbound media is also in the `UNBOUND` index by expiry.
pub(super) fn media_item(media: &Media) -> Item {
    let sid = media.sid.as_str();
    match (media.message_sid.as_ref(), media.expires_at) {
        (None, Some(expires_at)) => {
            let order = keys::unbound_order(expires_at, &media.sid);
            keyed(media, sid, keys::MEDIA, Some((keys::UNBOUND, &order)))
        }
        _ => keyed(media, sid, keys::MEDIA, None),
    }
}

/// A message item, in its channel's index order on GSI1.
pub(super) fn message_item(message: &Message) -> Item {
    keyed(
        message,
        message.channel_sid.as_str(),
        &keys::message(&message.sid),
        Some((
            &keys::messages_of(&message.channel_sid),
            &keys::message_order(message.index),
        )),
    )
}

/// The pending deletion of an S3 object, written in the transaction that removes
/// its record and cleared once the object is gone.
pub(super) fn pending_deletion_item(object_key: &str) -> Item {
    let now = crate::model::now();
    HashMap::from([
        (keys::PK.to_owned(), s(keys::pending_deletion(object_key))),
        (keys::SK.to_owned(), s(keys::OBJECT)),
        (keys::GSI1PK.to_owned(), s(keys::PENDING_DELETIONS)),
        (
            keys::GSI1SK.to_owned(),
            s(format!("{}#{object_key}", now.to_rfc3339())),
        ),
        ("object_key".to_owned(), s(object_key)),
    ])
}

/// The condition that `holds_slot` still is what the caller read (`:held`).
pub(super) fn held_condition(held: bool) -> &'static str {
    if held {
        "holds_slot = :held"
    } else {
        "(attribute_not_exists(holds_slot) OR holds_slot = :held)"
    }
}
