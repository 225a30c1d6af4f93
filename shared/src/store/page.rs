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
    pub sk_prefix: Option<&'a str>,
    pub forward: bool,
}

fn encode_token(key: &Item) -> String {
    let map: HashMap<&str, &str> = key
        .iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|v| (k.as_str(), v.as_str())))
        .collect();
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&map).expect("string map serializes"))
}

fn decode_token(token: &str, q: &Query<'_>) -> StoreResult<Item> {
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| StoreError::InvalidPageToken)?;
    let map: HashMap<String, String> =
        serde_json::from_slice(&bytes).map_err(|_| StoreError::InvalidPageToken)?;
    let partition_attr = if q.index { keys::GSI1PK } else { keys::PK };
    let mut expected = vec![keys::PK, keys::SK];
    if q.index {
        expected.extend([keys::GSI1PK, keys::GSI1SK]);
    }
    let shape_ok = map.len() == expected.len() && expected.iter().all(|k| map.contains_key(*k));
    let same_partition = map.get(partition_attr).map(String::as_str) == Some(q.partition);
    let in_range = q.sk_prefix.is_none_or(|p| map[keys::SK].starts_with(p));
    if !(shape_ok && same_partition && in_range) {
        return Err(StoreError::InvalidPageToken);
    }
    Ok(map.into_iter().map(|(k, v)| (k, s(v))).collect())
}

/// Decodes a page token for a query of `partition` (on GSI1 when `index`, with
/// sort keys under `sk_prefix`): the same check a list request makes, without
/// I/O, for fuzzing and property tests.
pub fn decode_page_token(
    token: &str,
    index: bool,
    partition: &str,
    sk_prefix: Option<&str>,
) -> StoreResult<Item> {
    let q = Query {
        index,
        partition,
        sk_prefix,
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
        let (pk_attr, sk_attr) = if q.index {
            (keys::GSI1PK, keys::GSI1SK)
        } else {
            (keys::PK, keys::SK)
        };
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
            query = match q.sk_prefix {
                Some(prefix) => query
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .expression_attribute_names("#sk", sk_attr)
                    .expression_attribute_values(":prefix", s(prefix)),
                None => query.key_condition_expression("#pk = :pk"),
            };
            if q.index {
                query = query.index_name(keys::GSI1);
            } else {
                query = query.consistent_read(true);
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
