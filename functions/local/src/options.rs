//! Command-line options.

use std::path::PathBuf;

pub const USAGE: &str =
    "usage: refwire-local [--port PORT] [--data-file PATH] [--allow-loopback-http]

  --port PORT            port on 127.0.0.1 to serve the API on (default 3000; 0 picks a free one)
  --data-file PATH       SQLite data file, created on first start (default ./refwire.db)
  --allow-loopback-http  let webhooks target http:// and https:// receivers on this machine
                         (127.0.0.0/8, ::1, localhost), for development; every other rule stays";

#[derive(Debug, PartialEq)]
pub struct Options {
    pub port: u16,
    pub data_file: PathBuf,
    pub allow_loopback_http: bool,
}

impl Options {
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
        let mut options = Options {
            port: 3000,
            data_file: PathBuf::from("refwire.db"),
            allow_loopback_http: false,
        };
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
                "-h" | "--help" => return Err("refwire-local: run Refwire on this machine".into()),
                other => return Err(format!("unknown option {other:?}")),
            }
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(args.iter().map(|arg| arg.to_string()))
    }

    #[test]
    fn defaults_and_both_flag_spellings() {
        assert_eq!(parse(&[]).unwrap().port, 3000);
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
}
