use super::page::Query;
use super::{keyed, keys, Page, PageRequest, Store, StoreError, StoreResult};
use crate::model::{Role, Service};
use crate::sid::ServiceSid;

fn service_item(service: &Service) -> super::Item {
    let sid = service.sid.as_str();
    let order = format!("{}#{sid}", service.date_created.to_rfc3339());
    keyed(service, sid, keys::SERVICE, Some((keys::SERVICES, &order)))
}

impl Store {
    /// Creates a service and its default roles together.
    pub async fn create_service(&self, service: &Service, roles: &[Role]) -> StoreResult<()> {
        let mut ops = vec![self.put_op(service_item(service), Some("attribute_not_exists(PK)"))];
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
                sk_prefix: None,
                forward: true,
            },
            req,
        )
        .await
    }

    /// Replaces a service that still exists.
    pub async fn update_service(&self, service: &Service) -> StoreResult<()> {
        self.put(service_item(service), Some("attribute_exists(PK)"))
            .await
    }

    /// Deletes a service and everything under it: channels (with their members and
    /// messages), roles, users. Children go first and the service record last, so a
    /// crash leaves the service in place and a repeated delete finishes the job.
    /// Returns the S3 keys whose deletion is now pending.
    pub async fn delete_service(&self, sid: &ServiceSid) -> StoreResult<Vec<String>> {
        let mut pending_objects = Vec::new();
        loop {
            let channels = self
                .list_channels(
                    sid,
                    &PageRequest {
                        size: 100,
                        ..PageRequest::default()
                    },
                )
                .await?;
            if channels.items.is_empty() {
                break;
            }
            for channel in channels.items {
                pending_objects.extend(self.delete_channel(&channel).await?);
            }
        }
        self.delete_partition_except(sid.as_str(), keys::SERVICE)
            .await?;
        match self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(super::key(sid.as_str(), keys::SERVICE)))
            .send()
            .await
        {
            Ok(_) => Ok(pending_objects),
            Err(e) => Err(StoreError::from_sdk(e)),
        }
    }
}
