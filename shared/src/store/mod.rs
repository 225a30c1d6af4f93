//! The DynamoDB repository: one table, conditional writes and transactions for
//! every invariant, paging by DynamoDB's own cursors (never a scan).
//!
//! Layout: `keys` (the key map), `items` (records as items), `ops` (the calls
//! everything builds on), `error`, `schema`, `page`; then one module per record
//! kind (`services`, `roles`, `channels`, `members`, `users`, `messages`,
//! `media`, `uploads`, `quarantine`, `quotas`), each importing only the layers below it.

mod error;
mod items;
pub mod keys;
mod ops;
mod page;
mod schema;

mod channel_webhooks;
mod channels;
mod inbound;
mod media;
mod members;
mod messages;
mod outbox;
mod quarantine;
mod quotas;
mod retention;
mod roles;
mod scanned;
mod services;
mod uploads;
mod users;

pub use aws_sdk_dynamodb::types::AttributeValue;
pub use channel_webhooks::SaveWebhooksError;
pub use channels::CreateChannelError;
pub use error::{StoreError, StoreResult};
pub use inbound::INBOUND_PENDING;
pub use items::{n, s, Item};
pub use media::PendingDeletion;
pub use members::{AddMemberError, UserChannelRef, MAX_IDENTITY_FILTER};
pub use messages::{CreateMessageError, SendContext};
pub use page::{decode_page_token, Page, PageRequest, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
pub use quotas::{Backfilled, QuotaLimits};
pub use uploads::{CreateUploadError, UNBOUND_COUNT};

use aws_sdk_dynamodb::Client;

/// The repository: a DynamoDB client and the table it owns.
#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    table: String,
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
}
