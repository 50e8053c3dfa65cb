//! The table's shape, as template.yaml declares it: keys, the four GSIs, the LSI, the stream and TTL. Tests
//! and the moto bootstrap create it from here.

use super::unavailable;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ScalarAttributeType, StreamSpecification,
    StreamViewType, TimeToLiveSpecification,
};
use refwire_core::StoreError;

/// (index name, partition key, sort key); `None` is the table itself.
pub const KEYS: [(Option<&str>, &str, &str); 5] = [
    (None, "pk", "sk"),
    (Some("gsi1"), "gsi1pk", "gsi1sk"),
    (Some("gsi2"), "gsi2pk", "gsi2sk"),
    (Some("gsi3"), "gsi3pk", "gsi3sk"),
    (Some("gsi4"), "gsi4pk", "gsi4sk"),
];

/// The global indexes that project only the keys (they are counted, not read); the others
/// project every attribute.
pub const KEYS_ONLY_INDEXES: [&str; 1] = ["gsi4"];

/// The local index (same partition as the table, strongly consistent reads): (name, sort key).
pub const LOCAL_INDEX: (&str, &str) = ("lsi1", "lsi1sk");

fn key_schema(partition: &str, sort: &str) -> Result<Vec<KeySchemaElement>, StoreError> {
    [(partition, KeyType::Hash), (sort, KeyType::Range)]
        .into_iter()
        .map(|(name, key_type)| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .map_err(unavailable)
        })
        .collect()
}

/// Creates the table (on-demand, stream of new images, TTL on `ttl`).
pub async fn create(client: &Client, name: &str) -> Result<(), StoreError> {
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()
                .map_err(unavailable)?,
        );
    for (index, partition, sort) in KEYS {
        for attribute in [partition, sort] {
            request = request.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(attribute)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(unavailable)?,
            );
        }
        match index {
            None => request = request.set_key_schema(Some(key_schema(partition, sort)?)),
            Some(index) => {
                let projection = if KEYS_ONLY_INDEXES.contains(&index) {
                    ProjectionType::KeysOnly
                } else {
                    ProjectionType::All
                };
                request = request.global_secondary_indexes(
                    GlobalSecondaryIndex::builder()
                        .index_name(index)
                        .set_key_schema(Some(key_schema(partition, sort)?))
                        .projection(Projection::builder().projection_type(projection).build())
                        .build()
                        .map_err(unavailable)?,
                )
            }
        }
    }
    let (local_index, local_sort) = LOCAL_INDEX;
    request = request
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(local_sort)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(unavailable)?,
        )
        .local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name(local_index)
                .set_key_schema(Some(key_schema("pk", local_sort)?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(unavailable)?,
        );
    request.send().await.map_err(unavailable)?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("ttl")
                .build()
                .map_err(unavailable)?,
        )
        .send()
        .await
        .map_err(unavailable)?;
    Ok(())
}
