//! Whole numbers in request bodies. JSON has one number type, and JSON Schema's `integer` (what the
//! OpenAPI description declares) is any number without a fractional part, so `30.0` and `3e1` are
//! the integer 30: clients whose JSON writers emit floats get the same answer as those that don't.

use serde::de::{Error, Unexpected};
use serde::{Deserialize, Deserializer};

/// An unsigned integer field that also takes whole-valued floats (`30.0`), and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Whole<T>(pub T);

/// The unsigned types a [`Whole`] holds, with the largest value it takes: the largest of the
/// OpenAPI format the description gives the type (`int32` for `u32`, `int64` for `u64`), so that a
/// client keeping to the description never sends a number Refwire refuses, nor the reverse.
pub trait Unsigned: TryFrom<u64> {
    const MAX: u64;
}

impl Unsigned for u8 {
    const MAX: u64 = u8::MAX as u64;
}
impl Unsigned for u32 {
    const MAX: u64 = i32::MAX as u64;
}
impl Unsigned for u64 {
    const MAX: u64 = i64::MAX as u64;
}

impl<'de, T: Unsigned> Deserialize<'de> for Whole<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let number = serde_json::Number::deserialize(deserializer)?;
        let whole = number.as_u64().or_else(|| {
            number
                .as_f64()
                .filter(|float| float.fract() == 0.0 && (0.0..=T::MAX as f64).contains(float))
                .map(|float| float as u64)
        });
        whole
            .filter(|whole| *whole <= T::MAX)
            .and_then(|whole| T::try_from(whole).ok())
            .map(Whole)
            .ok_or_else(|| {
                let expected = format!("a whole number from 0 to {}", T::MAX);
                D::Error::invalid_value(Unexpected::Other(&number.to_string()), &expected.as_str())
            })
    }
}

/// `Option<Whole<T>>` as the `Option<T>` the domain uses.
pub fn option<T>(value: Option<Whole<T>>) -> Option<T> {
    value.map(|Whole(value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: Unsigned>(json: &str) -> Result<T, String> {
        serde_json::from_str::<Whole<T>>(json)
            .map(|Whole(value)| value)
            .map_err(|err| err.to_string())
    }

    #[test]
    fn whole_valued_floats_are_integers() {
        assert_eq!(parse::<u32>("30"), Ok(30));
        assert_eq!(parse::<u32>("30.0"), Ok(30));
        assert_eq!(parse::<u32>("3e1"), Ok(30));
        assert_eq!(parse::<u8>("255.0"), Ok(255));
        assert_eq!(parse::<u64>("0"), Ok(0));
    }

    #[test]
    fn fractions_negatives_and_overflow_are_refused_with_the_range() {
        for json in ["30.5", "-1", "-1.0", "256", "1e400"] {
            let err = parse::<u8>(json).unwrap_err();
            assert!(
                err.contains("a whole number from 0 to 255"),
                "{json}: {err}"
            );
        }
        assert!(parse::<u32>("2147483648").is_err());
        assert_eq!(parse::<u64>("9223372036854775807"), Ok(i64::MAX as u64));
        assert!(parse::<u64>("9223372036854775808").is_err());
        assert!(parse::<u32>("\"30\"").is_err());
    }
}
