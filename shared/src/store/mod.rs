//! The DynamoDB repository: one table, conditional writes and transactions for
//! every invariant, paging by DynamoDB's own cursors (never a scan).

pub mod keys;
mod page;

mod channels;
mod media;
mod members;
mod messages;
mod roles;
mod services;
mod uploads;
mod users;

pub use channels::CreateChannelError;
pub use media::PendingDeletion;
pub use members::AddMemberError;
pub use messages::{CreateMessageError, SendContext};
pub use page::{Page, PageRequest, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
pub use uploads::{CreateUploadError, UNBOUND_COUNT};

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, Delete, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    Projection, ProjectionType, Put, ScalarAttributeType, TimeToLiveSpecification,
    TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use aws_sdk_dynamodb::types::AttributeValue;

use crate::error::ApiError;

pub type Item = HashMap<String, AttributeValue>;

/// What went wrong talking to DynamoDB, in the terms handlers decide on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A condition on a single write failed.
    #[error("condition failed")]
    ConditionFailed,
    /// A transaction was cancelled; one reason code per item (`None` = that item was fine).
    #[error("transaction cancelled: {0:?}")]
    Cancelled(Vec<Option<String>>),
    /// The caller's PageToken is not one this query issued.
    #[error("invalid page token")]
    InvalidPageToken,
    #[error("DynamoDB is unavailable: {0}")]
    Unavailable(String),
    #[error("DynamoDB error: {0}")]
    Other(String),
}

impl StoreError {
    /// Whether item `i` of a cancelled transaction failed its condition.
    pub fn condition_failed_at(&self, i: usize) -> bool {
        match self {
            StoreError::Cancelled(reasons) => reasons
                .get(i)
                .and_then(|r| r.as_deref())
                .is_some_and(|c| c == "ConditionalCheckFailed"),
            StoreError::ConditionFailed => true,
            _ => false,
        }
    }

    /// A conflict with a concurrent transaction: safe to retry.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Cancelled(r) if r.iter().flatten().any(|c| c == "TransactionConflict"))
    }

    fn from_sdk<E, R>(err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        match err {
            SdkError::DispatchFailure(e) => {
                StoreError::Unavailable(format!("cannot reach DynamoDB: {e:?}"))
            }
            SdkError::TimeoutError(_) => StoreError::Unavailable("DynamoDB timed out".into()),
            SdkError::ServiceError(e) => {
                let e = e.into_err();
                let code = e.code().unwrap_or_default().to_owned();
                let message = e.message().unwrap_or_default().to_owned();
                match code.as_str() {
                    "ConditionalCheckFailedException" => StoreError::ConditionFailed,
                    "ProvisionedThroughputExceededException"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
                    | "ServiceUnavailable"
                    | "ResourceNotFoundException" => {
                        StoreError::Unavailable(format!("{code}: {message}"))
                    }
                    _ => StoreError::Other(format!("{code}: {message}")),
                }
            }
            other => StoreError::Unavailable(format!("{other:?}")),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => {
                tracing::error!(error = %m, "DynamoDB unavailable");
                ApiError::unavailable("The data store is unavailable; try again shortly")
            }
            StoreError::ConditionFailed | StoreError::Cancelled(_) => ApiError::conflict(
                crate::error::code::CONFLICT,
                "The resource was changed by another request; try again",
            ),
            StoreError::InvalidPageToken => {
                ApiError::invalid("PageToken", "not a token issued for this list")
            }
            StoreError::Other(m) => ApiError::internal(format!("Data store error: {m}")),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The repository: a DynamoDB client and the table it owns.
#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    table: String,
}

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn to_item<T: Serialize>(record: &T) -> Item {
    serde_dynamo::to_item(record).expect("records serialize to DynamoDB items")
}

fn from_item<T: DeserializeOwned>(item: Item) -> StoreResult<T> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Other(format!("corrupt record: {e}")))
}

/// A record with its keys, ready to put.
fn keyed<T: Serialize>(record: &T, pk: &str, sk: &str, gsi: Option<(&str, &str)>) -> Item {
    let mut item = to_item(record);
    item.insert(keys::PK.into(), s(pk));
    item.insert(keys::SK.into(), s(sk));
    if let Some((gpk, gsk)) = gsi {
        item.insert(keys::GSI1PK.into(), s(gpk));
        item.insert(keys::GSI1SK.into(), s(gsk));
    }
    item
}

fn key(pk: &str, sk: &str) -> Item {
    HashMap::from([(keys::PK.into(), s(pk)), (keys::SK.into(), s(sk))])
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table (keys, GSI1, TTL) if missing; for local runs and tests.
    pub async fn ensure_table(&self) -> StoreResult<()> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("complete attribute definition")
        };
        let key_el = |name: &str, t: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(t)
                .build()
                .expect("complete key element")
        };
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(keys::GSI1)
            .key_schema(key_el(keys::GSI1PK, KeyType::Hash))
            .key_schema(key_el(keys::GSI1SK, KeyType::Range))
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .expect("complete GSI");
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr(keys::PK))
            .attribute_definitions(attr(keys::SK))
            .attribute_definitions(attr(keys::GSI1PK))
            .attribute_definitions(attr(keys::GSI1SK))
            .key_schema(key_el(keys::PK, KeyType::Hash))
            .key_schema(key_el(keys::SK, KeyType::Range))
            .global_secondary_indexes(gsi)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e) if e.code() == Some("ResourceInUseException") => return Ok(()),
            Err(e) => return Err(StoreError::from_sdk(e)),
        }
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(keys::TTL)
                    .build()
                    .expect("complete TTL spec"),
            )
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// A cheap call that proves the table answers (readiness checks).
    pub async fn ping(&self) -> StoreResult<()> {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map(|_| ())
            .map_err(StoreError::from_sdk)
    }

    async fn get<T: DeserializeOwned>(
        &self,
        pk: &str,
        sk: &str,
        consistent: bool,
    ) -> StoreResult<Option<T>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        out.item.map(from_item).transpose()
    }

    /// Reads several items in one call, strongly consistent; missing ones are absent.
    async fn batch_get(&self, wanted: Vec<(String, String)>) -> StoreResult<Vec<Item>> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let mut pending = KeysAndAttributes::builder()
            .set_keys(Some(wanted.iter().map(|(p, k)| key(p, k)).collect()))
            .consistent_read(true)
            .build()
            .expect("keys are set");
        let mut found = Vec::new();
        for _ in 0..5 {
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, pending)
                .send()
                .await
                .map_err(StoreError::from_sdk)?;
            if let Some(mut responses) = out.responses {
                found.extend(responses.remove(&self.table).unwrap_or_default());
            }
            match out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .filter(|k| !k.keys.is_empty())
            {
                Some(rest) => pending = rest,
                None => return Ok(found),
            }
        }
        Err(StoreError::Unavailable(
            "DynamoDB kept returning unprocessed keys".into(),
        ))
    }

    async fn put(&self, item: Item, condition: Option<&str>) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .send()
            .await
            .map(|_| ())
            .map_err(StoreError::from_sdk)
    }

    /// Writes all items or none; the error carries one reason per item.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> StoreResult<()> {
        self.transact_returning(items).await.map_err(|(e, _)| e)
    }

    /// As [`Store::transact`]; a cancellation also returns, per item, the item as it
    /// was when its condition failed (for ops that ask for `ALL_OLD`).
    async fn transact_returning(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<(), (StoreError, Vec<Option<Item>>)> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) => match e.into_err() {
                TransactWriteItemsError::TransactionCanceledException(c) => {
                    let reasons = c.cancellation_reasons();
                    Err((
                        StoreError::Cancelled(
                            reasons
                                .iter()
                                .map(|r| r.code().filter(|c| *c != "None").map(str::to_owned))
                                .collect(),
                        ),
                        reasons.iter().map(|r| r.item().cloned()).collect(),
                    ))
                }
                other => Err((
                    StoreError::Other(format!(
                        "{}: {}",
                        other.code().unwrap_or_default(),
                        other.message().unwrap_or_default()
                    )),
                    Vec::new(),
                )),
            },
            Err(e) => Err((StoreError::from_sdk(e), Vec::new())),
        }
    }

    fn put_op(&self, item: Item, condition: Option<&str>) -> TransactWriteItem {
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .set_condition_expression(condition.map(str::to_owned))
                    .build()
                    .expect("table and item are set"),
            )
            .build()
    }

    fn delete_op(&self, pk: &str, sk: &str, condition: Option<&str>) -> TransactWriteItem {
        TransactWriteItem::builder()
            .delete(
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(pk, sk)))
                    .set_condition_expression(condition.map(str::to_owned))
                    .build()
                    .expect("table and key are set"),
            )
            .build()
    }

    /// A condition on an item the transaction does not write.
    fn condition_check_op(
        &self,
        pk: &str,
        sk: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> TransactWriteItem {
        let mut b = aws_sdk_dynamodb::types::ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .condition_expression(condition);
        for (name, value) in values {
            b = b.expression_attribute_values(name, value);
        }
        TransactWriteItem::builder()
            .condition_check(b.build().expect("table, key and condition are set"))
            .build()
    }

    /// Deletes every item of a partition but `keep` (the parent record, deleted last
    /// by the caller), 25 at a time; safe to repeat after a crash.
    async fn delete_partition_except(&self, pk: &str, keep: &str) -> StoreResult<u64> {
        let mut deleted = 0;
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk")
                .expression_attribute_values(":pk", s(pk))
                .projection_expression("PK, SK")
                .limit(25)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(StoreError::from_sdk)?;
            let items: Vec<Item> = out
                .items
                .unwrap_or_default()
                .into_iter()
                .filter(|i| {
                    i.get(keys::SK)
                        .and_then(|v| v.as_s().ok())
                        .map(String::as_str)
                        != Some(keep)
                })
                .collect();
            deleted += items.len() as u64;
            if !items.is_empty() {
                self.batch_delete(items).await?;
            }
            match out.last_evaluated_key {
                Some(last) => start = Some(last),
                None => return Ok(deleted),
            }
        }
    }

    async fn batch_delete(&self, keys_to_delete: Vec<Item>) -> StoreResult<()> {
        use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
        let mut requests: Vec<WriteRequest> = keys_to_delete
            .into_iter()
            .map(|k| {
                let key: Item = k
                    .into_iter()
                    .filter(|(name, _)| name == keys::PK || name == keys::SK)
                    .collect();
                WriteRequest::builder()
                    .delete_request(
                        DeleteRequest::builder()
                            .set_key(Some(key))
                            .build()
                            .expect("key is set"),
                    )
                    .build()
            })
            .collect();
        for attempt in 0..8 {
            if requests.is_empty() {
                return Ok(());
            }
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, requests)
                .send()
                .await
                .map_err(StoreError::from_sdk)?;
            requests = out
                .unprocessed_items
                .and_then(|mut u| u.remove(&self.table))
                .unwrap_or_default();
            if !requests.is_empty() {
                tokio::time::sleep(std::time::Duration::from_millis(25 << attempt)).await;
            }
        }
        Err(StoreError::Unavailable(
            "DynamoDB kept returning unprocessed deletes".into(),
        ))
    }
}

impl Store {
    /// An `ADD`/`SET` update of one item inside a transaction.
    fn update_op(
        &self,
        pk: &str,
        sk: &str,
        expression: &str,
        condition: Option<&str>,
        values: Vec<(&str, AttributeValue)>,
    ) -> UpdateOp {
        use aws_sdk_dynamodb::types::Update;
        let mut b = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .update_expression(expression)
            .set_condition_expression(condition.map(str::to_owned));
        for (name, value) in values {
            b = b.expression_attribute_values(name, value);
        }
        UpdateOp(b)
    }
}

/// An update on its way into a transaction; names map reserved words like `status`.
struct UpdateOp(aws_sdk_dynamodb::types::builders::UpdateBuilder);

impl UpdateOp {
    fn with_name(self, placeholder: &str, name: &str) -> Self {
        UpdateOp(self.0.expression_attribute_names(placeholder, name))
    }

    /// A failed condition returns the item as it is (saves a read before a retry).
    fn returning_item_on_failure(self) -> Self {
        UpdateOp(self.0.return_values_on_condition_check_failure(
            aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
        ))
    }
}

impl From<UpdateOp> for TransactWriteItem {
    fn from(op: UpdateOp) -> Self {
        TransactWriteItem::builder()
            .update(op.0.build().expect("table, key and expression are set"))
            .build()
    }
}
