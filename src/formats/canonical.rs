//! RFC 8785 (JCS) canonical JSON for the register's entries: object keys sorted by UTF-16 code units, no
//! whitespace, strings escaped as ECMAScript's JSON.stringify does, numbers written as ECMAScript writes an
//! IEEE 754 double (`1.0` is `1`, `1e21` is `1e+21`, an integer past 2^53 loses its low digits). Entries
//! hold only integers within [`MAX_EXACT_INTEGER`] (registry events with other numbers are refused), whose
//! canonical form is their plain digits, so an entry reads back the same through any JSON parser.

use serde_json::{Number, Value};

/// The largest integer an IEEE 754 double holds exactly (2^53 − 1): the range of integers that keep every
/// digit through RFC 8785, and the only numbers register entries hold.
pub const MAX_EXACT_INTEGER: u64 = (1 << 53) - 1;

/// True when `number` is an integer whose canonical form is its exact digits (within ±[`MAX_EXACT_INTEGER`]).
pub fn is_exact_integer(number: &Number) -> bool {
    number.as_u64().is_some_and(|n| n <= MAX_EXACT_INTEGER)
        || number.as_i64().is_some_and(|n| n.unsigned_abs() <= MAX_EXACT_INTEGER)
}

/// The canonical bytes of `value`.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write(value, &mut out);
    out
}

fn write(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend(serde_json::to_vec(key).expect("strings serialize"));
                out.push(b':');
                write(&map[key], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out);
            }
            out.push(b']');
        }
        Value::Number(number) => out.extend(number_text(number).into_bytes()),
        scalar => out.extend(serde_json::to_vec(scalar).expect("scalars serialize")),
    }
}

/// `number` as RFC 8785 §3.2.2.3 writes it: ECMAScript's Number::toString of the nearest double.
fn number_text(number: &Number) -> String {
    if is_exact_integer(number) {
        return number.to_string();
    }
    // Without serde_json's arbitrary_precision every number converts; what does not fit a double exactly
    // becomes the nearest one, as RFC 8785 asks.
    ecmascript_number(number.as_f64().expect("a serde_json number converts to f64"))
}

/// ECMAScript's Number::toString(x) for a finite double (ECMA-262 §6.1.6.1.20): the shortest digits that
/// round-trip, in plain notation for exponents from -6 to 20 and scientific notation outside.
fn ecmascript_number(x: f64) -> String {
    if x == 0.0 {
        return "0".into(); // -0 too
    }
    let sign = if x < 0.0 { "-" } else { "" };
    // Rust's `{:e}` is the shortest round-tripping digits: `d[.ddd]e<exp>`.
    let scientific = format!("{:e}", x.abs());
    let (mantissa, exponent) = scientific.split_once('e').expect("LowerExp writes an exponent");
    let exponent: i32 = exponent.parse().expect("LowerExp writes an integer exponent");
    let digits = even_on_a_tie(x.abs(), mantissa.replace('.', ""), exponent);
    let k = digits.len() as i32;
    let n = exponent + 1;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let fraction = if k > 1 { format!(".{}", &digits[1..]) } else { String::new() };
        let exponent_sign = if n - 1 < 0 { '-' } else { '+' };
        format!("{}{fraction}e{exponent_sign}{}", &digits[..1], (n - 1).abs())
    };
    format!("{sign}{body}")
}

/// `shortest` (the shortest round-tripping digits of `x`, scaled by 10^`exponent`), or, when `x` lies exactly
/// halfway between it and the other candidate of that length, the candidate whose last digit is even, as
/// ECMAScript chooses (Rust's formatting picks the upper one).
fn even_on_a_tie(x: f64, shortest: String, exponent: i32) -> String {
    // Every double's decimal expansion ends within 767 significant digits, so this is exact.
    let exact = format!("{x:.767e}");
    let (mantissa, exact_exponent) = exact.split_once('e').expect("LowerExp writes an exponent");
    let exact_digits = mantissa.replace('.', "");
    let k = shortest.len();
    let rest = &exact_digits[k..];
    let halfway = rest.starts_with('5') && rest[1..].bytes().all(|b| b == b'0');
    let lower = &exact_digits[..k];
    let lower_is_even = lower.bytes().last().is_some_and(|d| (d - b'0') % 2 == 0);
    let same_scale = exact_exponent.parse() == Ok(exponent);
    let round_trips = || format!("{}.{}e{exponent}", &lower[..1], &lower[1..]).parse::<f64>() == Ok(x);
    if halfway && lower_is_even && same_scale && lower != shortest && round_trips() {
        return lower.to_owned();
    }
    shortest
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_at_every_depth_and_drops_whitespace() {
        let v = json!({"b": 1, "a": {"z": [true, null, "x"], "\u{e9}": 2, "A": 3}, "\u{1f600}": 0, "\u{ff61}": 1});
        assert_eq!(
            String::from_utf8(canonical_json(&v)).unwrap(),
            "{\"a\":{\"A\":3,\"z\":[true,null,\"x\"],\"\u{e9}\":2},\"b\":1,\"\u{1f600}\":0,\"\u{ff61}\":1}"
        );
    }

    /// RFC 8785 Appendix B: doubles by their bits, and the text JCS writes for each.
    #[test]
    fn numbers_are_written_as_ecmascript_writes_doubles() {
        let vectors = [
            (0x0000000000000000_u64, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for (bits, text) in vectors {
            let value = Value::Number(Number::from_f64(f64::from_bits(bits)).unwrap());
            assert_eq!(String::from_utf8(canonical_json(&value)).unwrap(), text, "{bits:#018x}");
        }
    }

    #[test]
    fn every_written_number_reads_back_as_the_same_double() {
        let mut bits = 0x9e3779b97f4a7c15_u64;
        for _ in 0..20_000 {
            bits = bits.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let x = f64::from_bits(bits);
            if x.is_finite() {
                assert_eq!(ecmascript_number(x).parse::<f64>().unwrap(), x, "{bits:#018x}");
            }
        }
    }

    #[test]
    fn integers_keep_their_digits_up_to_two_to_the_53_and_lose_them_past_it() {
        let v = json!({"a": 1.0, "b": 4.50, "c": 2e-3, "d": 9007199254740991_u64, "e": -9007199254740991_i64,
            "f": 18446744073709551615_u64, "g": 9007199254740993_u64, "h": 1e30});
        assert_eq!(
            String::from_utf8(canonical_json(&v)).unwrap(),
            r#"{"a":1,"b":4.5,"c":0.002,"d":9007199254740991,"e":-9007199254740991,"f":18446744073709552000,"g":9007199254740992,"h":1e+30}"#
        );
        assert!(is_exact_integer(&Number::from(MAX_EXACT_INTEGER)));
        assert!(!is_exact_integer(&Number::from(MAX_EXACT_INTEGER + 1)));
        assert!(!is_exact_integer(&Number::from(-(MAX_EXACT_INTEGER as i64) - 1)));
        assert!(!is_exact_integer(&Number::from_f64(1.0).unwrap()));
    }

    /// Found by tests/differential.rs against rfc8785: serde_json's default float parsing read this text as
    /// the next double down, so the canonical form named another number. float_roundtrip reads it exactly.
    #[test]
    fn a_number_text_canonicalizes_to_the_double_it_names() {
        for text in ["-6.467630116999999e+38", "6.467630116999999e38", "2.2250738585072009e-308"] {
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(value.as_f64(), text.parse::<f64>().ok(), "{text}");
            let canonical = String::from_utf8(canonical_json(&value)).unwrap();
            assert_eq!(canonical.parse::<f64>().unwrap(), text.parse::<f64>().unwrap(), "{text}");
        }
    }

    #[test]
    fn escapes_control_characters_like_json_stringify() {
        let v = json!("line\nbreak\t\"quoted\"\u{1f}/");
        assert_eq!(String::from_utf8(canonical_json(&v)).unwrap(), r#""line\nbreak\t\"quoted\"\u001f/""#);
    }
}
