//! RFC 8785 (JCS) canonical JSON for the register's entries: object keys sorted by UTF-16 code units, no
//! whitespace, strings escaped as ECMAScript's JSON.stringify does. Entries hold strings, integers,
//! booleans, null, arrays and objects only (no floats), which keeps number formatting out of the picture.

use serde_json::Value;

/// The canonical bytes of `value`. Floats are written as serde_json writes them; entries never hold any.
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
        scalar => out.extend(serde_json::to_vec(scalar).expect("scalars serialize")),
    }
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

    #[test]
    fn escapes_control_characters_like_json_stringify() {
        let v = json!("line\nbreak\t\"quoted\"\u{1f}/");
        assert_eq!(String::from_utf8(canonical_json(&v)).unwrap(), r#""line\nbreak\t\"quoted\"\u001f/""#);
    }
}
