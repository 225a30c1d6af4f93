//! The DynamoDB calls every repository module builds on: reads, conditional
//! puts, transactions with their cancellation reasons, batch reads and deletes.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use serde::de::DeserializeOwned;

use super::items::{from_item, key, s, Item};
use super::{keys, AttributeValue, Store, StoreError, StoreResult};

impl Store {
    pub(super) async fn get<T: DeserializeOwned>(
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

    /// The first `limit` items of one GSI1 partition in sort-key order: the
    /// work queues (pending deletions, the post-event outbox) are such partitions.
    pub(super) async fn gsi1_head<T: DeserializeOwned>(
        &self,
        partition: &str,
        limit: i32,
    ) -> StoreResult<Vec<T>> {
        self.gsi1_head_below(partition, None, limit).await
    }

    /// As [`Store::gsi1_head`], only items whose sort key is below `upper` when given
    /// (the retention sweep: media bound before a date).
    pub(super) async fn gsi1_head_below<T: DeserializeOwned>(
        &self,
        partition: &str,
        upper: Option<&str>,
        limit: i32,
    ) -> StoreResult<Vec<T>> {
        let condition = match upper {
            Some(_) => "GSI1PK = :pk AND GSI1SK < :upper",
            None => "GSI1PK = :pk",
        };
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression(condition)
            .expression_attribute_values(":pk", s(partition));
        if let Some(upper) = upper {
            query = query.expression_attribute_values(":upper", s(upper));
        }
        let out = query
            .limit(limit)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect()
    }

    /// Reads several items in one call, strongly consistent; missing ones are absent.
    pub(super) async fn batch_get(&self, wanted: Vec<(String, String)>) -> StoreResult<Vec<Item>> {
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

    pub(super) async fn put(&self, item: Item, condition: Option<&str>) -> StoreResult<()> {
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
    pub(super) async fn transact(&self, items: Vec<TransactWriteItem>) -> StoreResult<()> {
        self.transact_returning(items).await.map_err(|(e, _)| e)
    }

    /// As [`Store::transact`]; a cancellation also returns, per item, the item as it
    /// was when its condition failed (for ops that ask for `ALL_OLD`).
    pub(super) async fn transact_returning(
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

    pub(super) fn put_op(&self, item: Item, condition: Option<&str>) -> TransactWriteItem {
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

    /// A put on a condition that names values (`:x`).
    pub(super) fn put_op_values(
        &self,
        item: Item,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> TransactWriteItem {
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression(condition)
                    .set_expression_attribute_values(Some(
                        values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                    ))
                    .build()
                    .expect("table and item are set"),
            )
            .build()
    }

    pub(super) fn delete_op(
        &self,
        pk: &str,
        sk: &str,
        condition: Option<&str>,
    ) -> TransactWriteItem {
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

    /// A delete on a condition that names attributes (`#x`).
    pub(super) fn delete_op_named(
        &self,
        pk: &str,
        sk: &str,
        condition: &str,
        names: &[(&str, &str)],
    ) -> TransactWriteItem {
        let mut d = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .condition_expression(condition);
        for (placeholder, name) in names {
            d = d.expression_attribute_names(*placeholder, *name);
        }
        TransactWriteItem::builder()
            .delete(d.build().expect("table and key are set"))
            .build()
    }

    /// A condition on an item the transaction does not write.
    pub(super) fn condition_check_op(
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
    pub(super) async fn delete_partition_except(&self, pk: &str, keep: &str) -> StoreResult<u64> {
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

    pub(super) async fn batch_delete(&self, keys_to_delete: Vec<Item>) -> StoreResult<()> {
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

    /// An `ADD`/`SET` update of one item inside a transaction.
    pub(super) fn update_op(
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
pub(super) struct UpdateOp(aws_sdk_dynamodb::types::builders::UpdateBuilder);

impl UpdateOp {
    pub(super) fn with_name(self, placeholder: &str, name: &str) -> Self {
        UpdateOp(self.0.expression_attribute_names(placeholder, name))
    }

    /// A failed condition returns the item as it is (saves a read before a retry).
    pub(super) fn returning_item_on_failure(self) -> Self {
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
