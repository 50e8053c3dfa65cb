//! What the load generators share: a `refwire-local` process on a fresh data file, command-line
//! flags, and latency percentiles.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `refwire-local` process serving a fresh data file on a free port; killed when dropped.
pub struct LocalServer {
    process: Child,
    /// `http://127.0.0.1:PORT`, as printed in the banner.
    pub base_url: String,
    /// The default program's secret key, printed on first start.
    pub secret_key: String,
    // Dropped after the process is killed (fields drop after `Drop::drop`), so SQLite never sees
    // its file disappear.
    _data_dir: tempfile::TempDir,
}

impl LocalServer {
    /// Starts `program` with `extra_args` and waits until its banner has shown the URL and keys.
    pub fn start(program: &str, extra_args: &[&str]) -> LocalServer {
        let data_dir = tempfile::tempdir().expect("a temporary directory");
        let mut process = Command::new(program)
            .args(["--port", "0", "--data-file"])
            .arg(data_dir.path().join("bench.db"))
            .args(extra_args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| {
                panic!("cannot start {program}: {err} (cargo build --release -p refwire-local)")
            });
        let mut stdout = BufReader::new(process.stdout.take().unwrap());
        let mut base_url = None;
        let secret_key = loop {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap() == 0 {
                panic!("{program} exited before printing its secret key");
            }
            let line = line.trim();
            if let Some(url) = line.strip_prefix("refwire-local listening on ") {
                base_url = Some(url.to_string());
            }
            if let Some(secret) = line.strip_prefix("secret key:") {
                break secret.trim().to_string();
            }
        };
        // The server logs to stdout after its banner: keep the pipe drained (a full pipe would
        // block the server, a closed one would fail its writes) and pass the logs on to stderr,
        // leaving out the banner's remaining key lines, which are indented.
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if !line.starts_with(' ') {
                    eprintln!("{line}");
                }
            }
        });
        LocalServer {
            process,
            base_url: base_url.expect("a listening address before the secret key"),
            secret_key,
            _data_dir: data_dir,
        }
    }
}

impl LocalServer {
    /// The process's peak resident memory so far (`VmHWM`), in MB; `None` where /proc has no such line.
    pub fn peak_rss_mb(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.id())).ok()?;
        let kilobytes: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kilobytes / 1024.0)
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.process.kill().ok();
        self.process.wait().ok();
    }
}

/// The `--flag value` pairs given on the command line; every option of these tools takes a value.
pub fn flag_values() -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        let value = argv
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        pairs.push((flag, value));
    }
    pairs
}

/// The smallest sample that at least `fraction` of `sorted` (non-empty, ascending) does not exceed.
pub fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

/// Prints p50, p90, p99 and max of `sorted` (non-empty, ascending), one per line, in milliseconds.
pub fn print_latencies(sorted: &[Duration]) {
    for (label, fraction) in [("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("max", 1.0)] {
        println!(
            "{label}: {:.2} ms",
            percentile(sorted, fraction).as_secs_f64() * 1000.0
        );
    }
}
