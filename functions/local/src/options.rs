//! Command-line options.

use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str =
    "usage: refwire-local [--port PORT] [--data-file PATH] [--allow-loopback-http]
                     [--header-timeout SECONDS] [--body-timeout SECONDS]
       refwire-local --help | --version

  --port PORT               port on 127.0.0.1 to serve the API on (default 3000; 0 picks a free one)
  --data-file PATH          SQLite data file, created on first start (default ./refwire.db)
  --allow-loopback-http     let webhooks target http:// and https:// receivers on this machine
                            (127.0.0.0/8, ::1, localhost), for development; every other rule stays
  --header-timeout SECONDS  how long a client may take to send a request's headers (default 10);
                            a connection that is slower is closed
  --body-timeout SECONDS    how long a client may take to send a request's body (default 30);
                            a slower body is answered 408
  -h, --help                print this help and exit
  -V, --version             print the version and exit";

/// What the command line asks for: serve, or print something and exit.
#[derive(Debug, PartialEq)]
pub enum Command {
    Serve(Options),
    Help,
    Version,
}

#[derive(Debug, PartialEq)]
pub struct Options {
    pub port: u16,
    pub data_file: PathBuf,
    pub allow_loopback_http: bool,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            port: 3000,
            data_file: PathBuf::from("refwire.db"),
            allow_loopback_http: false,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
        }
    }
}

impl Command {
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Command, String> {
        let mut options = Options::default();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) => (flag.to_string(), Some(value.to_string())),
                None => (arg, None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "--port" => {
                    let text = value()?;
                    options.port = text
                        .parse()
                        .map_err(|_| format!("--port: {text:?} is not a port number"))?;
                }
                "--data-file" => options.data_file = PathBuf::from(value()?),
                "--allow-loopback-http" if inline.is_none() => options.allow_loopback_http = true,
                "--header-timeout" => options.header_timeout = seconds(&flag, &value()?)?,
                "--body-timeout" => options.body_timeout = seconds(&flag, &value()?)?,
                "-h" | "--help" if inline.is_none() => return Ok(Command::Help),
                "-V" | "--version" if inline.is_none() => return Ok(Command::Version),
                other => return Err(format!("unknown option {other:?}")),
            }
        }
        Ok(Command::Serve(options))
    }
}

/// A timeout of 1 to 3600 whole seconds: zero would refuse every request, and a limit of hours is
/// no limit.
fn seconds(flag: &str, text: &str) -> Result<Duration, String> {
    text.parse()
        .ok()
        .filter(|seconds| (1..=3600).contains(seconds))
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{flag}: {text:?} is not a whole number of seconds from 1 to 3600"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        match Command::parse(args.iter().map(|arg| arg.to_string()))? {
            Command::Serve(options) => Ok(options),
            other => Err(format!("not a serve command: {other:?}")),
        }
    }

    #[test]
    fn defaults_and_both_flag_spellings() {
        assert_eq!(parse(&[]).unwrap(), Options::default());
        let options = parse(&["--port", "8080", "--data-file=/tmp/x.db"]).unwrap();
        assert_eq!(options.port, 8080);
        assert_eq!(options.data_file, PathBuf::from("/tmp/x.db"));
        assert!(!options.allow_loopback_http);
        assert!(
            parse(&["--allow-loopback-http"])
                .unwrap()
                .allow_loopback_http
        );
        assert!(parse(&["--allow-loopback-http=yes"]).is_err());
        assert!(parse(&["--port", "x"]).is_err());
        assert!(parse(&["--port"]).is_err());
        assert!(parse(&["--verbose"]).is_err());
    }

    #[test]
    fn timeouts_are_whole_seconds_within_an_hour() {
        let options = parse(&["--header-timeout", "2", "--body-timeout=5"]).unwrap();
        assert_eq!(options.header_timeout, Duration::from_secs(2));
        assert_eq!(options.body_timeout, Duration::from_secs(5));
        for bad in ["0", "3601", "1.5", "-1", "soon"] {
            assert!(parse(&["--body-timeout", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn help_and_version_win_over_serving() {
        let command = |args: &[&str]| Command::parse(args.iter().map(|arg| arg.to_string()));
        assert_eq!(command(&["--port", "1", "--help"]), Ok(Command::Help));
        assert_eq!(command(&["-h"]), Ok(Command::Help));
        assert_eq!(command(&["--version"]), Ok(Command::Version));
        assert_eq!(command(&["-V"]), Ok(Command::Version));
    }
}
