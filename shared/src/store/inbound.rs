//! Inbound jobs (`IS…` / `INBOUND#<MessageSid>`): created once per inbound
//! `MessageSid` (a conditional put, so a repeated webhook creates nothing),
//! leased by whoever processes them, and listed while pending on GSI1
//! (`INBOUND_PENDING`, by lease expiry) so the sweep resumes abandoned ones.

use aws_sdk_dynamodb::types::ReturnValue;

use super::items::{from_item, key, keyed, n, s, Item};
use super::{keys, Store, StoreError, StoreResult};
use crate::model::{InboundJob, InboundStatus};
use crate::sid::ServiceSid;

/// GSI1 partition of the jobs still pending.
pub const INBOUND_PENDING: &str = "INBOUND_PENDING";

fn sort_key(job_key: &str) -> String {
    format!("INBOUND#{job_key}")
}

/// Pending jobs in lease order: a job is claimable once its lease is in the past.
fn pending_order(job: &InboundJob) -> String {
    format!(
        "{:012}#{}#{}",
        job.working_until.max(0),
        job.service_sid,
        job.key
    )
}

fn job_item(job: &InboundJob) -> Item {
    let order = pending_order(job);
    let gsi = (job.status == InboundStatus::Pending).then_some((INBOUND_PENDING, order.as_str()));
    keyed(job, job.service_sid.as_str(), &sort_key(&job.key), gsi)
}

impl Store {
    /// Records a new job; `false` when one with this key exists (a repeated delivery).
    pub async fn create_inbound(&self, job: &InboundJob) -> StoreResult<bool> {
        match self
            .put(job_item(job), Some("attribute_not_exists(PK)"))
            .await
        {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn get_inbound(
        &self,
        service: &ServiceSid,
        job_key: &str,
    ) -> StoreResult<Option<InboundJob>> {
        self.get(service.as_str(), &sort_key(job_key), true).await
    }

    /// Takes the lease of a pending job nobody holds (or whose holder's lease ran
    /// out); `None` when it is done, failed or held.
    pub async fn claim_inbound(
        &self,
        service: &ServiceSid,
        job_key: &str,
        now: i64,
        lease: i64,
    ) -> StoreResult<Option<InboundJob>> {
        let order = format!("{lease:012}#{service}#{job_key}");
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(service.as_str(), &sort_key(job_key))))
            .update_expression("SET working_until = :lease, GSI1SK = :order ADD attempts :one")
            .condition_expression(
                "attribute_exists(PK) AND #status = :pending AND working_until < :now",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":lease", n(lease))
            .expression_attribute_values(":order", s(order))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":pending", s(InboundStatus::Pending.as_str()))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match out {
            Ok(out) => out.attributes.map(from_item).transpose(),
            Err(e) => match StoreError::from_sdk(e) {
                StoreError::ConditionFailed => Ok(None),
                other => Err(other),
            },
        }
    }

    /// Writes the job's progress (or its end) while the caller holds `lease`;
    /// `false` when the lease was lost to another run.
    pub async fn save_inbound(&self, job: &InboundJob, lease: i64) -> StoreResult<bool> {
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(job_item(job)))
            .condition_expression("working_until = :lease")
            .expression_attribute_values(":lease", n(lease))
            .send()
            .await;
        match out.map_err(StoreError::from_sdk) {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Pending jobs whose lease is before `now` (GSI1, eventually consistent: the
    /// claim re-checks), oldest lease first.
    pub async fn claimable_inbound(
        &self,
        now: i64,
        limit: i32,
    ) -> StoreResult<Vec<(ServiceSid, String)>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("GSI1PK = :pk AND GSI1SK < :upper")
            .expression_attribute_values(":pk", s(INBOUND_PENDING))
            .expression_attribute_values(":upper", s(format!("{now:012}")))
            .limit(limit)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                let job: InboundJob = from_item(item)?;
                Ok((job.service_sid, job.key))
            })
            .collect()
    }
}
