//! `ProgramStore`: programs and API keys.

use super::{DynamoStore, Record, Step, unavailable};
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem};
use refwire_core::StoreError;
use refwire_core::ports::ProgramStore;
use refwire_core::programs::ReferralSettings;
use refwire_core::programs::{ApiKeyRecord, Program};

pub(super) fn program_pk(program_id: &str) -> String {
    format!("PROGRAM#{program_id}")
}

pub(super) fn key_pk(key_id: &str) -> String {
    format!("APIKEY#{key_id}")
}

impl DynamoStore {
    pub(super) fn key_step(&self, key: &ApiKeyRecord) -> Result<Step, StoreError> {
        let mut record = Record::new(key_pk(&key.key_id), "APIKEY", "APIKEY").with_doc(key)?;
        record.program_id = Some(key.program_id.clone());
        Ok(Step::new(
            self.put_new(&record)?,
            StoreError::failed("API key id collision"),
        ))
    }
}

#[async_trait::async_trait]
impl ProgramStore for DynamoStore {
    async fn create_program(
        &self,
        program: &Program,
        keys: &[ApiKeyRecord],
    ) -> Result<(), StoreError> {
        let record =
            Record::new(program_pk(&program.id), "PROGRAM", "PROGRAM").with_doc(program)?;
        let mut steps = vec![Step::new(
            self.put_new(&record)?,
            StoreError::failed("program id collision"),
        )];
        for key in keys {
            steps.push(self.key_step(key)?);
        }
        self.transact(steps).await
    }

    async fn get_program(&self, program_id: &str) -> Result<Option<Program>, StoreError> {
        self.get_doc(&program_pk(program_id), "PROGRAM").await
    }

    async fn save_settings(
        &self,
        program_id: &str,
        settings: &ReferralSettings,
    ) -> Result<(), StoreError> {
        let mut program = self
            .get_program(program_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        program.settings = settings.clone();
        let record =
            Record::new(program_pk(program_id), "PROGRAM", "PROGRAM").with_doc(&program)?;
        self.transact(vec![Step::new(
            self.put_existing(&record)?,
            StoreError::NotFound,
        )])
        .await
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let program_exists = ConditionCheck::builder()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(program_pk(&key.program_id)))
            .key("sk", AttributeValue::S("PROGRAM".into()))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(unavailable)?;
        self.transact(vec![
            Step::new(
                TransactWriteItem::builder()
                    .condition_check(program_exists)
                    .build(),
                StoreError::NotFound,
            ),
            self.key_step(key)?,
        ])
        .await
    }

    async fn find_api_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.get_doc(&key_pk(key_id), "APIKEY").await
    }

    async fn replace_inbound_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        self.swap_inbound_key(key).await
    }

    async fn delete_api_key(&self, program_id: &str, key_id: &str) -> Result<bool, StoreError> {
        self.delete_owned(key_pk(key_id), "APIKEY", program_id)
            .await
    }
}
