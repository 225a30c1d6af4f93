//! Paging by DynamoDB cursors: a page token is the last evaluated key, encoded,
//! and only accepted back for the same partition it came from.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;

use super::items::{from_item, s, Item};
use super::{keys, Store, StoreError, StoreResult};

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 1000;

/// A validated page request: `PageSize` 1..=1000, an opaque `PageToken`, the `Page` number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub size: u32,
    pub token: Option<String>,
    pub page: u32,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            size: DEFAULT_PAGE_SIZE,
            token: None,
            page: 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_token: self.next_token,
        }
    }
}

/// One partition to page through, on the table or on GSI1.
pub(super) struct Query<'a> {
    pub index: bool,
    pub partition: &'a str,
    /// What the table sort key (`SK`) of every item of this list starts with: the
    /// key condition of a table query, and what a page token must carry.
    pub item_sk: &'a str,
    pub forward: bool,
}

/// A page token longer than this was not issued by any list (keys are at most
/// 2048 + 1024 bytes, encoded as base64 of JSON).
const MAX_TOKEN_CHARS: usize = 8 * 1024;
/// DynamoDB's largest partition and sort key values, in bytes.
const MAX_PARTITION_KEY_BYTES: usize = 2048;
const MAX_SORT_KEY_BYTES: usize = crate::limits::DYNAMODB_SORT_KEY_BYTES;

fn encode_token(key: &Item) -> String {
    let map: HashMap<&str, &str> = key
        .iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|v| (k.as_str(), v.as_str())))
        .collect();
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&map).unwrap_or_default())
}

/// The start key a token names, if it is a cursor of this very list: exactly the
/// list's key attributes, in its partition, on one of its items, and each value
/// one DynamoDB accepts as a key (non-empty, within the key sizes). Anything else
/// is [`StoreError::InvalidPageToken`], never a query.
fn decode_token(token: &str, q: &Query<'_>) -> StoreResult<Item> {
    if token.len() > MAX_TOKEN_CHARS {
        return Err(StoreError::InvalidPageToken);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| StoreError::InvalidPageToken)?;
    let map: HashMap<String, String> =
        serde_json::from_slice(&bytes).map_err(|_| StoreError::InvalidPageToken)?;
    let partition_attr = if q.index { keys::GSI1PK } else { keys::PK };
    let mut expected = vec![
        (keys::PK, MAX_PARTITION_KEY_BYTES),
        (keys::SK, MAX_SORT_KEY_BYTES),
    ];
    if q.index {
        expected.extend([
            (keys::GSI1PK, MAX_PARTITION_KEY_BYTES),
            (keys::GSI1SK, MAX_SORT_KEY_BYTES),
        ]);
    }
    let shape_ok = map.len() == expected.len()
        && expected.iter().all(|(attr, max)| {
            map.get(*attr)
                .is_some_and(|v| !v.is_empty() && v.len() <= *max)
        });
    let same_partition = map.get(partition_attr).map(String::as_str) == Some(q.partition);
    let in_list = map
        .get(keys::SK)
        .is_some_and(|sk| sk.starts_with(q.item_sk));
    if !(shape_ok && same_partition && in_list) {
        return Err(StoreError::InvalidPageToken);
    }
    Ok(map.into_iter().map(|(k, v)| (k, s(v))).collect())
}

/// Decodes a page token for a list of `partition` (on GSI1 when `index`) whose
/// items' `SK` start with `item_sk`: the same check a list request makes,
/// without I/O, for fuzzing.
pub fn decode_page_token(
    token: &str,
    index: bool,
    partition: &str,
    item_sk: &str,
) -> StoreResult<Item> {
    let q = Query {
        index,
        partition,
        item_sk,
        forward: true,
    };
    decode_token(token, &q)
}

impl Store {
    pub(super) async fn query_page<T: DeserializeOwned>(
        &self,
        q: Query<'_>,
        req: &PageRequest,
    ) -> StoreResult<Page<T>> {
        let start = req
            .token
            .as_deref()
            .map(|t| decode_token(t, &q))
            .transpose()?;
        let pk_attr = if q.index { keys::GSI1PK } else { keys::PK };
        let mut items: Vec<T> = Vec::new();
        let mut start = start;
        // A page may come back short of `size` (1 MB limit); keep reading until full.
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_names("#pk", pk_attr)
                .expression_attribute_values(":pk", s(q.partition))
                .scan_index_forward(q.forward)
                .limit((req.size as usize - items.len()) as i32)
                .set_exclusive_start_key(start.take());
            if q.index {
                query = query
                    .key_condition_expression("#pk = :pk")
                    .index_name(keys::GSI1);
            } else {
                query = query
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .expression_attribute_names("#sk", keys::SK)
                    .expression_attribute_values(":prefix", s(q.item_sk))
                    .consistent_read(true);
            }
            let out = query.send().await.map_err(StoreError::from_sdk)?;
            for item in out.items.unwrap_or_default() {
                items.push(from_item(item)?);
            }
            match out.last_evaluated_key {
                Some(last) if items.len() < req.size as usize => start = Some(last),
                Some(last) => {
                    return Ok(Page {
                        items,
                        next_token: Some(encode_token(&last)),
                    })
                }
                None => {
                    return Ok(Page {
                        items,
                        next_token: None,
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(json: serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(json.to_string())
    }

    const MEMBERS: Query<'static> = Query {
        index: false,
        partition: "CH1",
        item_sk: keys::MEMBER_PREFIX,
        forward: true,
    };
    const MESSAGES: Query<'static> = Query {
        index: true,
        partition: "CH1#MESSAGES",
        item_sk: keys::MESSAGE_PREFIX,
        forward: true,
    };

    #[test]
    fn a_cursor_of_the_list_is_accepted() {
        let t = token(serde_json::json!({"PK": "CH1", "SK": "MEMBER#alice"}));
        let key = decode_token(&t, &MEMBERS).unwrap();
        assert_eq!(key[keys::SK], s("MEMBER#alice"));
        let t = token(serde_json::json!({"PK": "CH1", "SK": "MESSAGE#IM1",
            "GSI1PK": "CH1#MESSAGES", "GSI1SK": "00000000000000000001"}));
        assert!(decode_token(&t, &MESSAGES).is_ok());
    }

    #[test]
    fn anything_else_is_an_invalid_token_never_a_panic() {
        let long = "x".repeat(2000);
        let refused = [
            "e30".to_owned(), // {}
            "garbage!".to_owned(),
            URL_SAFE_NO_PAD.encode("[1,2]"),
            URL_SAFE_NO_PAD.encode([0xff, 0xfe]),
            token(serde_json::json!({"PK": "CH1"})),
            token(serde_json::json!({"SK": "MEMBER#alice"})),
            token(serde_json::json!({"PK": "CH1", "SK": 7})),
            token(serde_json::json!({"PK": "CH2", "SK": "MEMBER#alice"})),
            token(serde_json::json!({"PK": "CH1", "SK": "MESSAGE#IM1"})),
            token(serde_json::json!({"PK": "CH1", "SK": "MEMBER#a", "X": "y"})),
            token(serde_json::json!({"PK": "", "SK": "MEMBER#alice"})),
            token(serde_json::json!({"PK": "CH1", "SK": format!("MEMBER#{long}")})),
            "a".repeat(MAX_TOKEN_CHARS + 1),
        ];
        for t in &refused {
            assert_eq!(
                decode_token(t, &MEMBERS).unwrap_err(),
                StoreError::InvalidPageToken,
                "{t}"
            );
        }
        // Another list's cursor: members on messages and back.
        let member = token(serde_json::json!({"PK": "CH1", "SK": "MEMBER#alice"}));
        assert!(decode_token(&member, &MESSAGES).is_err());
        for message in [
            serde_json::json!({"PK": "CH1", "SK": "MESSAGE#IM1",
                "GSI1PK": "CH1#MESSAGES", "GSI1SK": "00000000000000000001"}),
            serde_json::json!({"PK": "CH1", "SK": "MEMBER#alice",
                "GSI1PK": "CH1#MESSAGES", "GSI1SK": "00000000000000000001"}),
            serde_json::json!({"PK": "CH1", "SK": "MESSAGE#IM1",
                "GSI1PK": "CH1#MESSAGES", "GSI1SK": ""}),
        ] {
            assert!(decode_token(&token(message.clone()), &MEMBERS).is_err());
            if message["SK"] != "MESSAGE#IM1" || message["GSI1SK"] == "" {
                assert!(decode_token(&token(message), &MESSAGES).is_err());
            }
        }
    }
}
