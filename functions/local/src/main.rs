//! `refwire-local`: the same Router the Lambda serves, on 127.0.0.1, over one SQLite data file.
//!
//! On first start it creates a default program and prints its keys and the operator key; they are
//! shown once, as in production. Data survives restarts.

mod bootstrap;
mod options;
mod parse_errors;
mod serve;

use refwire_core::ErrorChain;
use refwire_core::config::Config;
use refwire_core::service::Refwire;
use refwire_core::time::SystemClock;
use refwire_core::webhooks::url_rules::TargetPolicy;
use refwire_embedded::EmbeddedStore;
use refwire_local::LocalRuntime;
use std::sync::Arc;
use std::time::Duration;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// glibc's allocator took about a seventh of the CPU under delivery load, much of it contended
/// between the runtime's threads. jemalloc gave 10-15% more deliveries per second with peak RSS
/// still under 45 MB; mimalloc gave as much but peaked at 80-120 MB.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// How often lapsed referrals are expired (emitting `referral.expired`) and old events and delivery
/// logs purged, and how many referrals per pass.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
const SWEEP_BATCH: u32 = 500;
/// How long outbox events and delivery logs are kept (30 days; on AWS the table's TTL).
const RETENTION_DAYS: i64 = 30;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Logs go to stderr: stdout carries the start-up banner (URL and keys) that scripts read.
    // `RUST_LOG`: `target=level` pairs and a default level (tracing's `Targets`).
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|filter| filter.parse::<Targets>().ok())
        .unwrap_or_else(|| {
            Targets::new()
                .with_target("refwire", tracing::Level::INFO)
                .with_default(tracing::Level::WARN)
        });
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .finish()
        .with(filter)
        .init();
    let options = match options::Command::parse(std::env::args().skip(1)) {
        Ok(options::Command::Serve(options)) => options,
        Ok(options::Command::Help) => {
            println!("{}", options::USAGE);
            return std::process::ExitCode::SUCCESS;
        }
        Ok(options::Command::Version) => {
            println!("refwire-local {}", env!("CARGO_PKG_VERSION"));
            return std::process::ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("{message}\n\n{}", options::USAGE);
            return std::process::ExitCode::from(2);
        }
    };
    match run(options).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("refwire-local: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(options: options::Options) -> Result<(), String> {
    let store = EmbeddedStore::open(&options.data_file)
        .map_err(|err| format!("cannot open {}: {err}", options.data_file.display()))?;
    let mut config = Config::from_env()?;
    let operator_key = bootstrap::operator_key(&store, config.operator_key.take()).await?;
    config.operator_key = Some(operator_key.verifier);
    if options.allow_loopback_http {
        config.target_policy = TargetPolicy::AllowLoopbackHttp;
    }
    let LocalRuntime { app, workers, .. } =
        LocalRuntime::compose(store.clone(), Arc::new(SystemClock), config)?;
    let first_start = bootstrap::default_program(&store, &app).await?;

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
        .await
        .map_err(|err| format!("cannot listen on 127.0.0.1:{}: {err}", options.port))?;
    let address = listener.local_addr().map_err(|err| err.to_string())?;
    println!("refwire-local listening on http://{address}");
    println!("data file: {}", options.data_file.display());
    if options.allow_loopback_http {
        println!(
            "--allow-loopback-http: webhooks may target receivers on this machine (development only)"
        );
    }
    match first_start {
        Some(created) => {
            println!(
                "created the default program {} (keys are shown only now):",
                created.program.id
            );
            println!("  secret key:      {}", created.secret_key);
            println!("  publishable key: {}", created.publishable_key);
        }
        None => {
            println!("using the existing default program (its keys were printed on first start)")
        }
    }
    if let Some(operator) = operator_key.plaintext {
        println!("  operator key:    {operator}");
    }

    tokio::spawn(sweep(Arc::clone(&app), store.clone()));
    tokio::spawn(workers.clone().run_fan_out());
    tokio::spawn(workers.run_delivery());
    serve::serve(listener, refwire_api::router(app), &options).await;
    Ok(())
}

async fn sweep(app: Arc<Refwire>, store: EmbeddedStore) {
    let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        ticks.tick().await;
        match app.sweep_expired(SWEEP_BATCH).await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "expired lapsed referrals"),
            Err(err) => tracing::warn!(error = %ErrorChain(&err), "expiry sweep failed"),
        }
        let cutoff = chrono::Utc::now() - chrono::Duration::days(RETENTION_DAYS);
        match store.purge_before(cutoff).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "purged events and delivery logs past retention"),
            Err(err) => tracing::warn!(error = %ErrorChain(&err), "retention purge failed"),
        }
    }
}
