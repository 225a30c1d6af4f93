use super::items::{key, keyed, Item};
use super::page::Query;
use super::{keys, AttributeValue, Page, PageRequest, Store, StoreError, StoreResult};
use crate::model::{Role, Service};
use crate::sid::ServiceSid;

fn service_item(service: &Service) -> Item {
    let sid = service.sid.as_str();
    let order = format!("{}#{sid}", service.date_created.to_rfc3339());
    keyed(service, sid, keys::SERVICE, Some((keys::SERVICES, &order)))
}

impl Store {
    /// Creates a service and its default roles together.
    pub async fn create_service(&self, service: &Service, roles: &[Role]) -> StoreResult<()> {
        let mut ops = vec![self.put_op(service_item(service), Some("attribute_not_exists(PK)"))];
        if service.quotas.retention_days.is_some() {
            ops.push(self.retention_marker_op(service));
        }
        for role in roles {
            ops.push(self.put_op(
                keyed(role, service.sid.as_str(), &keys::role(&role.sid), None),
                Some("attribute_not_exists(PK)"),
            ));
        }
        self.transact(ops).await
    }

    pub async fn get_service(&self, sid: &ServiceSid) -> StoreResult<Option<Service>> {
        self.get(sid.as_str(), keys::SERVICE, true).await
    }

    pub async fn list_services(&self, req: &PageRequest) -> StoreResult<Page<Service>> {
        self.query_page(
            Query {
                index: true,
                partition: keys::SERVICES,
                item_sk: keys::SERVICE,
                forward: true,
                filter: None,
            },
            req,
        )
        .await
    }

    /// Replaces a service that still exists and is not being deleted (a stale
    /// read must not clear the `deleting` mark).
    /// The service's marker in the retention list follows `Media.RetentionDays`
    /// in the same transaction.
    pub async fn update_service(&self, service: &Service) -> StoreResult<()> {
        let condition = "attribute_exists(PK) AND attribute_not_exists(deleting)";
        let ops = vec![
            self.put_op(service_item(service), Some(condition)),
            self.retention_marker_op(service),
        ];
        match self.transact(ops).await {
            Err(e) if e.condition_failed_at(0) => Err(StoreError::ConditionFailed),
            other => other,
        }
    }

    /// Deletes a service and everything under it: channels (with their members,
    /// messages and media), roles, users. The service is first marked `deleting`, so
    /// no channel can be added meanwhile; children go next and the service record
    /// last, so a crash leaves the service (still marked) and a repeated delete
    /// finishes the job. Returns the S3 keys whose deletion is now pending.
    pub async fn delete_service(&self, sid: &ServiceSid) -> StoreResult<Vec<String>> {
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(sid.as_str(), keys::SERVICE)))
            .update_expression("SET deleting = :yes")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .send()
            .await
            .map_err(StoreError::from_sdk)
        {
            Ok(_) => {}
            Err(StoreError::ConditionFailed) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        }
        let mut pending_objects = Vec::new();
        // The channel list is a GSI, eventually consistent: a channel created just
        // before the mark may show up late, and one just deleted may linger. Keep
        // going until two reads a moment apart both find nothing.
        let mut empty_reads = 0;
        for _ in 0..MAX_ROUNDS {
            let channels = self
                .list_channels(
                    sid,
                    &PageRequest {
                        size: 100,
                        ..PageRequest::default()
                    },
                    &[],
                )
                .await?;
            if channels.items.is_empty() {
                empty_reads += 1;
                if empty_reads == 2 {
                    break;
                }
                tokio::time::sleep(GSI_SETTLE).await;
                continue;
            }
            empty_reads = 0;
            let mut progressed = false;
            for channel in &channels.items {
                let (existed, pending) = self.delete_channel_inner(channel, &[]).await?;
                progressed |= existed;
                pending_objects.extend(pending);
            }
            if !progressed {
                tokio::time::sleep(GSI_SETTLE).await;
            }
        }
        if empty_reads < 2 {
            return Err(StoreError::Unavailable(
                "the channel index did not settle; repeat the delete".into(),
            ));
        }
        self.delete_partition_except(sid.as_str(), keys::SERVICE)
            .await?;
        match self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(sid.as_str(), keys::SERVICE)))
            .send()
            .await
        {
            Ok(_) => Ok(pending_objects),
            Err(e) => Err(StoreError::from_sdk(e)),
        }
    }
}

/// How long a service delete waits for the channel index to catch up before it
/// concludes that no channel is left.
const GSI_SETTLE: std::time::Duration = std::time::Duration::from_millis(250);
/// Rounds of channel listing before a service delete gives up (and can be repeated).
const MAX_ROUNDS: usize = 10_000;
