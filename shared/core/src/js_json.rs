//! The text JavaScript's `JSON.stringify(JSON.parse(text))` gives for a JSON document.
//!
//! ReferralLoop's documented verifier computes its HMAC over `JSON.stringify(req.body)` after
//! express.json() parsed the body, not over the bytes received. A signature over the sent bytes
//! therefore verifies there only if those bytes are already what JavaScript writes back, so the
//! bodies of ReferralLoop deliveries are serialised here. JavaScript differs from serde_json in:
//! - numbers: every number is an IEEE-754 double, written as ECMAScript's Number::toString writes it
//!   (`5.0` -> `5`, `1e21` -> `1e+21`; digits beyond a double's precision are lost, a number too large
//!   for a double is `Infinity`, which JSON.stringify writes as `null`);
//! - key order: an object's keys that are array indices (`"0"`, `"7"`, `"10"`) come first, in
//!   ascending numeric order, then the other keys in insertion order (ECMAScript's
//!   OrdinaryOwnPropertyKeys).

use serde_json::{Map, Number, Value};
use std::fmt::Write;

/// `value` serialised exactly as `JSON.stringify(JSON.parse(serde_json::to_string(value)))`.
pub fn stringify(value: &Value) -> String {
    let mut text = String::new();
    write_value(value, &mut text);
    text
}

/// The validation message for a number [`numbers_fit_in_doubles`] refuses.
pub const NUMBER_OUT_OF_RANGE: &str =
    "numbers must be between -1.7976931348623157e308 and 1.7976931348623157e308";

/// Whether every number in `value` is within the range of a double. JSON.parse reads a larger one
/// as Infinity (which JSON.stringify then writes as `null`), and many JSON parsers refuse it, so
/// Refwire refuses such numbers in what it will deliver.
pub fn numbers_fit_in_doubles(value: &Value) -> bool {
    match value {
        Value::Number(number) => number.as_f64().is_some(),
        Value::Array(items) => items.iter().all(numbers_fit_in_doubles),
        Value::Object(fields) => fields.values().all(numbers_fit_in_doubles),
        Value::Null | Value::Bool(_) | Value::String(_) => true,
    }
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => write_number(number, out),
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push('[');
            for (position, item) in items.iter().enumerate() {
                if position > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(fields) => {
            out.push('{');
            for (position, (key, item)) in in_property_order(fields).into_iter().enumerate() {
                if position > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_value(item, out);
            }
            out.push('}');
        }
    }
}

fn write_number(number: &Number, out: &mut String) {
    // `as_f64` rounds the decimal text to the nearest double, as JSON.parse does, and is `None` only
    // when that overflows to infinity.
    match number.as_f64() {
        Some(double) => out.push_str(ryu_js::Buffer::new().format_finite(double)),
        None => out.push_str("null"),
    }
}

/// ECMAScript's QuoteJSONString: `"` and `\` escaped, the control characters below U+0020 as their
/// short escapes or `\u00xx` (lowercase hex), everything else as it is (no escaping of `/`,
/// non-ASCII or U+2028). Lone surrogates, which JSON.stringify also escapes, cannot occur in a `str`.
fn write_string(text: &str, out: &mut String) {
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Writing to a String cannot fail.
            control if control < ' ' => {
                let _ = write!(out, "\\u{:04x}", u32::from(control));
            }
            other => out.push(other),
        }
    }
    out.push('"');
}

/// The fields in JavaScript's property order: array-index keys ascending, then the rest as inserted.
fn in_property_order(fields: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut indexed: Vec<(u32, &String, &Value)> = Vec::new();
    let mut named: Vec<(&String, &Value)> = Vec::new();
    for (key, value) in fields {
        match array_index(key) {
            Some(index) => indexed.push((index, key, value)),
            None => named.push((key, value)),
        }
    }
    indexed.sort_by_key(|(index, _, _)| *index);
    indexed
        .into_iter()
        .map(|(_, key, value)| (key, value))
        .chain(named)
        .collect()
}

/// The index a key denotes if JavaScript treats it as an array index: the canonical decimal form
/// (no sign, no leading zero) of an integer below 2^32 - 1.
fn array_index(key: &str) -> Option<u32> {
    let index: u32 = key.parse().ok()?;
    (index != u32::MAX && index.to_string() == key).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `JSON.stringify(JSON.parse(text))`, by way of serde_json's parser (which keeps every digit).
    fn js(text: &str) -> String {
        stringify(&serde_json::from_str(text).unwrap())
    }

    #[test]
    fn numbers_are_written_as_javascript_writes_doubles() {
        let cases = [
            ("5", "5"),
            ("5.0", "5"),
            ("5.10", "5.1"),
            ("-0", "0"),
            ("-0.0", "0"),
            ("0.1", "0.1"),
            ("0.30000000000000004", "0.30000000000000004"),
            ("2.5E+3", "2500"),
            ("1e20", "100000000000000000000"),
            ("1e21", "1e+21"),
            ("1.5e300", "1.5e+300"),
            ("0.000001", "0.000001"),
            ("1e-7", "1e-7"),
            ("-1.5e-7", "-1.5e-7"),
            ("123456789012345678", "123456789012345680"),
            ("9007199254740993", "9007199254740992"),
            ("99999999999999999999999999999", "1e+29"),
            ("-99999999999999999999999999999", "-1e+29"),
            ("1e400", "null"),
            ("-1e400", "null"),
            ("1e-400", "0"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
            ("5e-324", "5e-324"),
        ];
        for (given, expected) in cases {
            assert_eq!(js(given), expected, "{given}");
        }
    }

    #[test]
    fn array_index_keys_come_first_in_numeric_order_then_the_rest_as_inserted() {
        assert_eq!(
            js(
                r#"{"b":1,"10":2,"a":3,"2":4,"01":5,"-1":6,"4294967294":7,"4294967295":8,"1.0":9,"":10,"+3":11,"0":12}"#
            ),
            r#"{"0":12,"2":4,"10":2,"4294967294":7,"b":1,"a":3,"01":5,"-1":6,"4294967295":8,"1.0":9,"":10,"+3":11}"#
        );
        // Nested objects too, and arrays keep their order.
        assert_eq!(
            js(r#"{"z":{"9":"nine","x":[3,1,{"1":true,"0":false}]},"7":null}"#),
            r#"{"7":null,"z":{"9":"nine","x":[3,1,{"0":false,"1":true}]}}"#
        );
        // A repeated key keeps its first position and its last value, as JSON.parse does.
        assert_eq!(js(r#"{"a":1,"b":2,"a":3}"#), r#"{"a":3,"b":2}"#);
    }

    #[test]
    fn strings_are_escaped_as_json_stringify_escapes_them() {
        assert_eq!(
            js(r#""q\"b\\s\/ \b\f\n\r\t \u0000\u0001\u001f\u007f \u2028\u2029 é€😀 <>&'""#),
            "\"q\\\"b\\\\s/ \\b\\f\\n\\r\\t \\u0000\\u0001\\u001f\u{7f} \u{2028}\u{2029} é€😀 <>&'\""
        );
        assert_eq!(js(r#"{"k\ney":"v"}"#), r#"{"k\ney":"v"}"#);
    }

    #[test]
    fn numbers_beyond_a_double_are_found_anywhere_in_a_document() {
        for fits in [
            "{}",
            r#"{"a":[1,-1.5e308,1e-400,"1e400"]}"#,
            "1.7976931348623157e308",
        ] {
            assert!(
                numbers_fit_in_doubles(&serde_json::from_str(fits).unwrap()),
                "{fits}"
            );
        }
        for beyond in ["1e400", r#"{"a":[1,{"b":-1e309}]}"#, "[2e308]"] {
            assert!(
                !numbers_fit_in_doubles(&serde_json::from_str(beyond).unwrap()),
                "{beyond}"
            );
        }
    }

    #[test]
    fn documents_come_out_compact() {
        assert_eq!(
            js(" { \"a\" : [ 1 , 2.50 , true , false , null , [ ] , { } ] , \"b\" : \"\" } "),
            r#"{"a":[1,2.5,true,false,null,[],{}],"b":""}"#
        );
        assert_eq!(js("[]"), "[]");
        assert_eq!(js("\"\""), "\"\"");
        assert_eq!(js("null"), "null");
    }
}
