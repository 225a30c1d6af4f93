use super::items::{key, keyed, s};
use super::page::Query;
use super::{keys, Page, PageRequest, Store, StoreError, StoreResult};
use crate::model::Role;
use crate::sid::{RoleSid, ServiceSid};

impl Store {
    pub async fn create_role(&self, role: &Role) -> StoreResult<()> {
        let item = keyed(
            role,
            role.service_sid.as_str(),
            &keys::role(&role.sid),
            None,
        );
        self.put(item, Some("attribute_not_exists(PK)")).await
    }

    /// Strongly consistent: permission checks read roles through here.
    pub async fn get_role(&self, service: &ServiceSid, sid: &RoleSid) -> StoreResult<Option<Role>> {
        self.get(service.as_str(), &keys::role(sid), true).await
    }

    pub async fn list_roles(
        &self,
        service: &ServiceSid,
        req: &PageRequest,
    ) -> StoreResult<Page<Role>> {
        self.query_page(
            Query {
                index: false,
                partition: service.as_str(),
                item_sk: keys::ROLE_PREFIX,
                forward: true,
                filter: None,
            },
            req,
        )
        .await
    }

    pub async fn update_role(&self, role: &Role) -> StoreResult<()> {
        let item = keyed(
            role,
            role.service_sid.as_str(),
            &keys::role(&role.sid),
            None,
        );
        self.put(item, Some("attribute_exists(PK)")).await
    }

    /// Whether any member or user holds the role (members and users index their role in GSI1).
    pub async fn role_in_use(&self, sid: &RoleSid) -> StoreResult<bool> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("GSI1PK = :pk")
            .expression_attribute_values(":pk", s(sid.as_str()))
            .limit(1)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(out.count > 0)
    }

    pub async fn delete_role(&self, service: &ServiceSid, sid: &RoleSid) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(service.as_str(), &keys::role(sid))))
            .condition_expression("attribute_exists(PK)")
            .send()
            .await
            .map(|_| ())
            .map_err(StoreError::from_sdk)
    }
}
