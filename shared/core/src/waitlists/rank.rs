//! Rank keys: strings whose byte order is the waitlist order, with a key between any two keys, so
//! a signup moves by rewriting its own key only (no other signup is touched when someone is boosted).
//!
//! This is "fractional indexing" (as in Figma's and Rocicorp's implementations): a key is a fixed
//! width base-62 integer (digits `0-9A-Za-z`, ASCII order) optionally followed by a fraction that
//! never ends in `0`. Joins append at the next integer and a move to the front takes the previous
//! one, so those keys stay 8 characters however long the list; only a key placed between two
//! neighbours grows a fraction (about one character per six splits of the same gap).

const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn digit_value(byte: u8) -> usize {
    DIGITS
        .iter()
        .position(|&digit| digit == byte)
        .expect("rank keys contain only base-62 digits")
}

/// Digits of a key's integer part.
const INTEGER_WIDTH: usize = 8;
/// The first key: the middle of the integer range, leaving as much room before as after.
const FIRST: &str = "V0000000";

/// Whether `key` is a rank key this module made.
pub fn is_rank_key(key: &str) -> bool {
    key.len() >= INTEGER_WIDTH
        && key.bytes().all(|b| DIGITS.contains(&b))
        && (key.len() == INTEGER_WIDTH || !key.ends_with('0'))
}

/// A key strictly between `low` and `high` (`None`: the start or the end of the order).
/// Requires `low < high` when both are given.
pub fn between(low: Option<&str>, high: Option<&str>) -> String {
    match (low, high) {
        (None, None) => FIRST.to_string(),
        (Some(low), None) => step(low, 1),
        (None, Some(high)) => step(high, -1),
        (Some(low), Some(high)) => {
            debug_assert!(low < high, "{low:?} < {high:?}");
            let (low_integer, low_fraction) = low.split_at(INTEGER_WIDTH);
            let (high_integer, high_fraction) = high.split_at(INTEGER_WIDTH);
            if low_integer == high_integer {
                return low_integer.to_string()
                    + &midpoint(low_fraction.as_bytes(), Some(high_fraction.as_bytes()));
            }
            // The next integer when it is still below `high`; else room after `low`'s fraction.
            let next = step(low, 1);
            if next.as_str() < high {
                next
            } else {
                low_integer.to_string() + &midpoint(low_fraction.as_bytes(), None)
            }
        }
    }
}

/// The integer key `by` after (or before) the integer part of `key`: past the end (or before
/// the start) whatever fraction `key` has.
fn step(key: &str, by: i64) -> String {
    let value = key.as_bytes()[..INTEGER_WIDTH]
        .iter()
        .fold(0i64, |value, &digit| value * 62 + digit_value(digit) as i64);
    let mut next = value + by;
    // 62^8 keys each way from the middle: a waitlist never gets near the edges.
    assert!(
        next >= 0 && next < 62i64.pow(INTEGER_WIDTH as u32),
        "rank keys exhausted"
    );
    let mut digits = [b'0'; INTEGER_WIDTH];
    for digit in digits.iter_mut().rev() {
        *digit = DIGITS[(next % 62) as usize];
        next /= 62;
    }
    String::from_utf8_lossy(&digits).into_owned()
}

fn midpoint(low: &[u8], high: Option<&[u8]>) -> String {
    if let Some(high) = high {
        // Keep the common prefix (reading a missing digit of `low` as 0).
        let shared = high
            .iter()
            .enumerate()
            .take_while(|(index, digit)| low.get(*index).copied().unwrap_or(b'0') == **digit)
            .count();
        if shared > 0 {
            let prefix = String::from_utf8_lossy(&high[..shared]).into_owned();
            let rest_low = low.get(shared..).unwrap_or_default();
            return prefix + &midpoint(rest_low, Some(&high[shared..]));
        }
    }
    let low_digit = low.first().map_or(0, |&byte| digit_value(byte));
    let high_digit = high.map_or(DIGITS.len(), |high| digit_value(high[0]));
    if high_digit - low_digit > 1 {
        let middle = (low_digit + high_digit).div_ceil(2);
        return (DIGITS[middle] as char).to_string();
    }
    // Adjacent first digits: take `high`'s first digit if that alone is still above `low`
    // (possible when `high` goes on), else keep `low`'s and find room after the rest of `low`.
    match high {
        Some(high) if high.len() > 1 => (high[0] as char).to_string(),
        _ => {
            let first = DIGITS[low_digit] as char;
            first.to_string() + &midpoint(low.get(1..).unwrap_or_default(), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn keys_fall_strictly_between_their_bounds() {
        for (low, high) in [
            (None, None),
            (None, Some("V0000000")),
            (Some("V0000000"), None),
            (Some("V000000z"), None),
            (Some("V0000000"), Some("V0000001")),
            (Some("V0000000"), Some("V00000001")),
            (Some("V0000001"), Some("V0000002")),
            (Some("V00000zz"), Some("V0000100")),
            (Some("Uzzzzzzz"), Some("V0000000")),
            (Some("V0000003k"), Some("V0000003kV")),
            (None, Some("V0000000V")),
        ] {
            let key = between(low, high);
            assert!(is_rank_key(&key), "{key:?}");
            assert!(low.is_none_or(|low| low < key.as_str()), "{low:?} < {key}");
            assert!(
                high.is_none_or(|high| key.as_str() < high),
                "{key} < {high:?}"
            );
        }
    }

    #[test]
    fn repeated_inserts_anywhere_keep_a_strict_order_and_short_keys() {
        let mut rng = rand::rng();
        let mut keys: Vec<String> = Vec::new();
        for round in 0..3000 {
            // Mostly appends (joins), often inserts near the front (boosts), sometimes anywhere.
            let slot = match round % 3 {
                0 => keys.len(),
                1 => rng.random_range(0..=keys.len().min(3)),
                _ => rng.random_range(0..=keys.len()),
            };
            let low = slot.checked_sub(1).map(|index| keys[index].as_str());
            let high = keys.get(slot).map(String::as_str);
            let key = between(low, high);
            assert!(is_rank_key(&key));
            keys.insert(slot, key);
        }
        assert!(keys.windows(2).all(|pair| pair[0] < pair[1]));
        let longest = keys.iter().map(String::len).max().unwrap();
        assert!(longest < 200, "keys stay short: {longest}");
    }

    #[test]
    fn appends_and_moves_to_the_front_keep_keys_short() {
        let mut last = between(None, None);
        let mut first = last.clone();
        for _ in 0..100_000 {
            let next = between(Some(&last), None);
            assert!(last < next);
            last = next;
            let before = between(None, Some(&first));
            assert!(before < first);
            first = before;
        }
        assert_eq!((last.len(), first.len()), (8, 8));
    }

    #[test]
    fn the_same_gap_split_many_times_still_has_room() {
        let (low, mut high) = ("V0000000".to_string(), "V0000001".to_string());
        for _ in 0..500 {
            let key = between(Some(&low), Some(&high));
            assert!(low < key && key < high);
            high = key;
        }
    }
}
