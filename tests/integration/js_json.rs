//! `refwire_core::js_json::stringify` against real JavaScript: for a document full of awkward
//! numbers, keys and strings, it gives exactly what Node's `JSON.stringify(JSON.parse(text))` gives.

use refwire_core::js_json::stringify;
use std::io::Write;
use std::process::{Command, Stdio};

/// Reads a JSON document on stdin and writes `JSON.stringify(JSON.parse(document))`.
const ROUND_TRIP: &str = "let text = ''; process.stdin.setEncoding('utf8'); \
    process.stdin.on('data', (chunk) => { text += chunk; }); \
    process.stdin.on('end', () => process.stdout.write(JSON.stringify(JSON.parse(text))));";

fn node_round_trip(document: &str) -> String {
    let mut child = Command::new(refwire_tests::node())
        .args(["-e", ROUND_TRIP])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| {
            panic!("cannot run node (scripts/test.sh installs it into .venv): {err}")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(document.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "node failed on the document");
    String::from_utf8(output.stdout).unwrap()
}

/// Numbers spelled every way JSON allows, from a fixed-seed generator: random doubles in Rust's
/// shortest and exponent forms, integers longer than a double holds, and decimal fractions.
fn many_numbers() -> Vec<String> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut numbers = Vec::new();
    while numbers.len() < 3000 {
        let double = f64::from_bits(next());
        if double.is_finite() {
            numbers.push(format!("{double:?}"));
            numbers.push(format!("{double:e}"));
        }
        let digits = next() % 40 + 1;
        let integer: String = (0..digits)
            .map(|_| char::from(b'0' + (next() % 10) as u8))
            .collect();
        let integer = integer.trim_start_matches('0');
        if !integer.is_empty() {
            numbers.push(integer.to_string());
            numbers.push(format!("-{integer}.{}0", next() % 1000));
            numbers.push(format!("0.{integer}E-{}", next() % 30));
        }
    }
    numbers
}

#[test]
fn stringify_matches_node_for_awkward_documents() {
    let tricky = r#"{
        "numbers": [5, 5.0, -0, -0.0, 0.1, 1e21, 1e20, 1E+21, 1.5e-7, 0.000001, 1e-7,
                    99999999999999999999999999999, 123456789012345678, 9007199254740993,
                    1.7976931348623157e308, 1e400, -1e400, 5e-324, 2.5e-324, 1e-400, 0.30000000000000004],
        "b": {"10": "ten", "2": "two", "a": 1, "01": "zero-one", "-1": "minus", "4294967294": "max index",
              "4294967295": "not an index", "1.0": "float", "": "empty", "+3": "plus", "0": "zero"},
        "a": {"z": [{"9": null, "x": true, "1": false}], "5": {"5.0": 5.0}},
        "dup": 1, "strings": ["q\"b\\s\/ \b\f\n\r\t", "\u0000\u0001\u001f\u007f", "\u2028\u2029",
                             "é€😀 \ud83d\ude00", "<script>&'", "\u00e9"],
        "dup": 2,
        "__proto__": {"polluted": true},
        "deep": [[[[[[[[[[[]]]]]]]]]], {}, [], "", null]
    }"#;
    assert_eq!(
        stringify(&serde_json::from_str(tricky).unwrap()),
        node_round_trip(tricky)
    );

    let numbers = format!("[{}]", many_numbers().join(","));
    let ours = stringify(&serde_json::from_str(&numbers).unwrap());
    let theirs = node_round_trip(&numbers);
    if ours != theirs {
        let differing = ours
            .split(',')
            .zip(theirs.split(','))
            .zip(numbers.trim_matches(['[', ']']).split(','))
            .find(|((ours, theirs), _)| ours != theirs);
        panic!("stringify and node differ: (ours, node's, given) = {differing:?}");
    }
}
