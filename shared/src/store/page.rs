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

/// A validated page request: `PageSize` 1..=1000, an opaque `PageToken`, the `Page`
/// number, and the list's filters and options (`Order`, `Identity`, `Type`) as
/// query pairs. The filters go into every page URL and are bound to the token, so
/// a token presented with other filters is refused, never a silently wrong page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub size: u32,
    pub token: Option<String>,
    pub page: u32,
    pub filters: Vec<(String, String)>,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            size: DEFAULT_PAGE_SIZE,
            token: None,
            page: 0,
            filters: Vec::new(),
        }
    }
}

impl PageRequest {
    /// Adds a filter or option of the list (kept in the order added).
    pub fn filter(&mut self, name: &str, value: impl Into<String>) {
        self.filters.push((name.to_owned(), value.into()));
    }

    /// The filters as a query string (`Order=desc&Identity=a`), empty without any.
    pub fn filter_query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.filters {
            q.append_pair(k, v);
        }
        q.finish()
    }
}

/// The token entry holding the filters a cursor was issued under.
const FILTERS_ENTRY: &str = "F";

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
    /// A DynamoDB filter expression with its names and values (list filters).
    pub filter: Option<Filter>,
}

/// A filter expression on the items of a list, e.g. `#identity IN (:f0, :f1)`.
pub(super) struct Filter {
    pub expression: String,
    pub names: Vec<(String, String)>,
    pub values: Vec<(String, aws_sdk_dynamodb::types::AttributeValue)>,
}

impl Filter {
    /// `attribute IN (values…)`: an item matches when the attribute is one of them.
    pub fn one_of(attribute: &str, values: &[&str]) -> Self {
        let placeholders: Vec<String> = (0..values.len()).map(|i| format!(":f{i}")).collect();
        Self {
            expression: format!("#f IN ({})", placeholders.join(", ")),
            names: vec![("#f".into(), attribute.into())],
            values: placeholders
                .into_iter()
                .zip(values)
                .map(|(p, v)| (p, s(*v)))
                .collect(),
        }
    }
}

/// A page token longer than this was not issued by any list (keys are at most
/// 2048 + 1024 bytes, encoded as base64 of JSON).
const MAX_TOKEN_CHARS: usize = 8 * 1024;
/// DynamoDB's largest partition and sort key values, in bytes.
const MAX_PARTITION_KEY_BYTES: usize = 2048;
const MAX_SORT_KEY_BYTES: usize = crate::limits::DYNAMODB_SORT_KEY_BYTES;

fn encode_token(key: &Item, filters: &str) -> String {
    let mut map: HashMap<&str, &str> = key
        .iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|v| (k.as_str(), v.as_str())))
        .collect();
    if !filters.is_empty() {
        map.insert(FILTERS_ENTRY, filters);
    }
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&map).unwrap_or_default())
}

/// The start key a token names, if it is a cursor of this very list: exactly the
/// list's key attributes, in its partition, on one of its items, and each value
/// one DynamoDB accepts as a key (non-empty, within the key sizes), issued under
/// the same `filters` (the request's filter query). Anything else is
/// [`StoreError::InvalidPageToken`], never a query.
fn decode_token(token: &str, q: &Query<'_>, filters: &str) -> StoreResult<Item> {
    if token.len() > MAX_TOKEN_CHARS {
        return Err(StoreError::InvalidPageToken);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| StoreError::InvalidPageToken)?;
    let mut map: HashMap<String, String> =
        serde_json::from_slice(&bytes).map_err(|_| StoreError::InvalidPageToken)?;
    let issued_under = map.remove(FILTERS_ENTRY).unwrap_or_default();
    if issued_under != filters {
        return Err(StoreError::InvalidPageToken);
    }
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
        filter: None,
    };
    decode_token(token, &q, "")
}

impl Store {
    pub(super) async fn query_page<T: DeserializeOwned>(
        &self,
        q: Query<'_>,
        req: &PageRequest,
    ) -> StoreResult<Page<T>> {
        let filters = req.filter_query();
        let start = req
            .token
            .as_deref()
            .map(|t| decode_token(t, &q, &filters))
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
            if let Some(f) = &q.filter {
                query = query.filter_expression(&f.expression);
                for (k, v) in &f.names {
                    query = query.expression_attribute_names(k, v);
                }
                for (k, v) in &f.values {
                    query = query.expression_attribute_values(k, v.clone());
                }
            }
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
                        next_token: Some(encode_token(&last, &filters)),
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
        filter: None,
    };
    const MESSAGES: Query<'static> = Query {
        index: true,
        partition: "CH1#MESSAGES",
        item_sk: keys::MESSAGE_PREFIX,
        forward: true,
        filter: None,
    };

    #[test]
    fn a_cursor_of_the_list_is_accepted() {
        let t = token(serde_json::json!({"PK": "CH1", "SK": "MEMBER#alice"}));
        let key = decode_token(&t, &MEMBERS, "").unwrap();
        assert_eq!(key[keys::SK], s("MEMBER#alice"));
        let t = token(serde_json::json!({"PK": "CH1", "SK": "MESSAGE#IM1",
            "GSI1PK": "CH1#MESSAGES", "GSI1SK": "00000000000000000001"}));
        assert!(decode_token(&t, &MESSAGES, "").is_ok());
    }

    #[test]
    fn a_cursor_is_bound_to_the_filters_it_was_issued_under() {
        let key = key_of(&serde_json::json!({"PK": "CH1", "SK": "MEMBER#alice"}));
        let t = encode_token(&key, "Order=desc");
        assert!(decode_token(&t, &MEMBERS, "Order=desc").is_ok());
        for other in ["", "Order=asc", "Order=desc&Identity=bob"] {
            assert_eq!(
                decode_token(&t, &MEMBERS, other).unwrap_err(),
                StoreError::InvalidPageToken,
                "{other}"
            );
        }
        let unfiltered = encode_token(&key, "");
        assert!(decode_token(&unfiltered, &MEMBERS, "").is_ok());
        assert!(decode_token(&unfiltered, &MEMBERS, "Order=desc").is_err());
    }

    fn key_of(json: &serde_json::Value) -> Item {
        json.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), s(v.as_str().unwrap())))
            .collect()
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
                decode_token(t, &MEMBERS, "").unwrap_err(),
                StoreError::InvalidPageToken,
                "{t}"
            );
        }
        // Another list's cursor: members on messages and back.
        let member = token(serde_json::json!({"PK": "CH1", "SK": "MEMBER#alice"}));
        assert!(decode_token(&member, &MESSAGES, "").is_err());
        for message in [
            serde_json::json!({"PK": "CH1", "SK": "MESSAGE#IM1",
                "GSI1PK": "CH1#MESSAGES", "GSI1SK": "00000000000000000001"}),
            serde_json::json!({"PK": "CH1", "SK": "MEMBER#alice",
                "GSI1PK": "CH1#MESSAGES", "GSI1SK": "00000000000000000001"}),
            serde_json::json!({"PK": "CH1", "SK": "MESSAGE#IM1",
                "GSI1PK": "CH1#MESSAGES", "GSI1SK": ""}),
        ] {
            assert!(decode_token(&token(message.clone()), &MEMBERS, "").is_err());
            if message["SK"] != "MESSAGE#IM1" || message["GSI1SK"] == "" {
                assert!(decode_token(&token(message), &MESSAGES, "").is_err());
            }
        }
    }
}
