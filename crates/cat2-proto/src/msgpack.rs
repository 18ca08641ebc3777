//! msgpack values (vlmeta, the b2nd metalayer) decoded to JSON and back.

use rmpv::Value;

/// Decodes msgpack bytes into JSON the way Caterva2 shows vlmeta: binary and non-UTF-8
/// strings become (lossy) strings, extension values and non-finite floats become `null`,
/// Caterva2's tuple marker `["__tuple__", …]` stays a list. Undecodable bytes give `null`.
pub fn to_json(bytes: &[u8]) -> serde_json::Value {
    let mut rd = bytes;
    match rmpv::decode::read_value(&mut rd) {
        Ok(v) => value_to_json(&v),
        Err(_) => serde_json::Value::Null,
    }
}

fn value_to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Nil | Value::Ext(..) => J::Null,
        Value::Boolean(b) => J::Bool(*b),
        Value::Integer(i) => i
            .as_i64()
            .map(J::from)
            .or_else(|| i.as_u64().map(J::from))
            .unwrap_or(J::Null),
        Value::F32(f) => serde_json::Number::from_f64(f64::from(*f)).map_or(J::Null, J::Number),
        Value::F64(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::String(s) => J::String(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        Value::Binary(b) => J::String(String::from_utf8_lossy(b).into_owned()),
        Value::Array(a) => J::Array(a.iter().map(value_to_json).collect()),
        Value::Map(m) => J::Object(
            m.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Value::String(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
                        Value::Binary(b) => String::from_utf8_lossy(b).into_owned(),
                        other => other.to_string(),
                    };
                    (key, value_to_json(v))
                })
                .collect(),
        ),
    }
}

/// Encodes a JSON value as msgpack (for writing vlmeta).
pub fn from_json(v: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &json_to_value(v)).expect("writing to a Vec cannot fail");
    out
}

fn json_to_value(v: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match v {
        J::Null => Value::Nil,
        J::Bool(b) => Value::Boolean(*b),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::F64(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        J::String(s) => Value::from(s.as_str()),
        J::Array(a) => Value::Array(a.iter().map(json_to_value).collect()),
        J::Object(m) => Value::Map(
            m.iter()
                .map(|(k, v)| (Value::from(k.as_str()), json_to_value(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_caterva2_attributes() {
        let v = serde_json::json!({"a": 1, "b": "foo", "c": 123.456, "d": [1, [2, 3]], "e": null});
        let bytes = from_json(&v);
        assert_eq!(to_json(&bytes), v);
        assert_eq!(to_json(b"\xc1garbage"), serde_json::Value::Null);
        assert_eq!(to_json(&[]), serde_json::Value::Null);
    }
}
