//! The table's shape: keys, the GSI, TTL. Production creates it from
//! template.yaml; local runs and tests create it here.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};

use super::{keys, Store, StoreError, StoreResult};

impl Store {
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
}
