//! Rank keys: strings whose byte order is the waitlist order, with a key between any two keys, so
//! a signup moves by rewriting its own key only (no other signup is touched when someone is boosted).
//!
//! A key is read as a base-62 fraction in [0, 1) with digits `0-9A-Za-z` (ASCII order), never
//! ending in `0`, so there is always room before and after it. This is the "fractional indexing"
//! technique (as in Figma's and Rocicorp's implementations), without their integer part.

const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn digit_value(byte: u8) -> usize {
    DIGITS
        .iter()
        .position(|&digit| digit == byte)
        .expect("rank keys contain only base-62 digits")
}

/// Whether `key` is a rank key this module made (base-62 digits, not ending in `0`).
pub fn is_rank_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| DIGITS.contains(&b)) && !key.ends_with('0')
}

/// A key strictly between `low` and `high` (`None`: the start or the end of the order).
/// Requires `low < high` when both are given.
pub fn between(low: Option<&str>, high: Option<&str>) -> String {
    let low = low.unwrap_or("");
    debug_assert!(high.is_none_or(|high| low < high), "{low:?} < {high:?}");
    midpoint(low.as_bytes(), high.map(str::as_bytes))
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
            (None, Some("V")),
            (Some("V"), None),
            (Some("A"), Some("B")),
            (Some("A"), Some("A1")),
            (Some("A1"), Some("A2")),
            (Some("Az"), Some("B")),
            (Some("zzz"), None),
            (None, Some("0001")),
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
        assert!(longest < 700, "keys stay bounded: {longest}");
    }

    #[test]
    fn the_same_gap_split_many_times_still_has_room() {
        let (low, mut high) = ("V".to_string(), "W".to_string());
        for _ in 0..500 {
            let key = between(Some(&low), Some(&high));
            assert!(low < key && key < high);
            high = key;
        }
    }
}
