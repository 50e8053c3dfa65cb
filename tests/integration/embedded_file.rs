//! The embedded store's data file under sustained concurrent writes: checkpoints run beside the
//! writer, and the WAL is still started over, so it stays a few megabytes however much is written.

use refwire_core::deliveries::Delivery;
use refwire_core::events::OutboxEvent;
use refwire_core::ports::DeliveryStore;
use serde_json::json;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_wal_stays_small_under_sustained_concurrent_writes() {
    let dir = tempfile::tempdir().unwrap();
    let data_file = dir.path().join("refwire.db");
    let store = Arc::new(refwire_embedded::EmbeddedStore::open(&data_file).unwrap());
    let now = chrono::Utc::now();
    // 64 writers at once, 20,000 deliveries (about 10 MB of rows and indexes) in all: without the
    // WAL starting over, it would hold every page each commit wrote.
    let writers: Vec<_> = (0..64)
        .map(|writer| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for n in 0..312 {
                    let event = OutboxEvent::new(
                        format!("evt_{writer:02}_{n:04}"),
                        "prg_1",
                        "referral.created",
                        now,
                        json!({}),
                    );
                    let delivery = Delivery::new(&event, &format!("wh_{}", n % 10), now);
                    store.insert_delivery(&delivery).await.unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let database = std::fs::metadata(&data_file).unwrap().len();
    let wal = std::fs::metadata(dir.path().join("refwire.db-wal"))
        .unwrap()
        .len();
    assert!(
        database > 5_000_000,
        "the rows reached the file: {database} bytes"
    );
    assert!(wal < 8_000_000, "the WAL grew to {wal} bytes");
}
