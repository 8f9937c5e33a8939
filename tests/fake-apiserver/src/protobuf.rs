//! Just enough of the Kubernetes protobuf encoding to read what `kubectl create namespace|configmap|secret`
//! send: kubectl's typed clients post `application/vnd.kubernetes.protobuf` and do not fall back to JSON.
//!
//! In: a request body (`k8s\0` + `runtime.Unknown`). Out: the object as JSON. Pure.

use serde_json::{Map, Value, json};

/// Why a protobuf body could not be read (HTTP 415/400).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProtoError {
    #[error("the protobuf body is truncated or malformed")]
    Malformed,
    #[error(
        "protobuf bodies are understood only for Namespace, ConfigMap and Secret; send {0} as JSON"
    )]
    UnsupportedKind(String),
}

enum Field<'a> {
    Scalar,
    Bytes(&'a [u8]),
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or(ProtoError::Malformed)?;
            self.pos += 1;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(ProtoError::Malformed)
    }

    fn next(&mut self) -> Result<Option<(u64, Field<'a>)>, ProtoError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let (num, wire) = (key >> 3, key & 7);
        let field = match wire {
            0 => {
                self.varint()?;
                Field::Scalar
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| ProtoError::Malformed)?;
                let end = self.pos.checked_add(len).ok_or(ProtoError::Malformed)?;
                let bytes = self.buf.get(self.pos..end).ok_or(ProtoError::Malformed)?;
                self.pos = end;
                Field::Bytes(bytes)
            }
            1 => {
                self.pos += 8;
                Field::Scalar
            }
            5 => {
                self.pos += 4;
                Field::Scalar
            }
            _ => return Err(ProtoError::Malformed),
        };
        Ok(Some((num, field)))
    }
}

fn string(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn map_entry(b: &[u8], value_as_base64: bool) -> Result<(String, Value), ProtoError> {
    let mut r = Reader::new(b);
    let (mut k, mut v) = (String::new(), Value::String(String::new()));
    while let Some((num, f)) = r.next()? {
        match (num, f) {
            (1, Field::Bytes(x)) => k = string(x),
            (2, Field::Bytes(x)) if value_as_base64 => {
                use base64::Engine as _;
                v = json!(base64::engine::general_purpose::STANDARD.encode(x));
            }
            (2, Field::Bytes(x)) => v = json!(string(x)),
            _ => {}
        }
    }
    Ok((k, v))
}

fn push_map(obj: &mut Map<String, Value>, key: &str, entry: (String, Value)) {
    let m = obj.entry(key.to_string()).or_insert_with(|| json!({}));
    if let Some(m) = m.as_object_mut() {
        m.insert(entry.0, entry.1);
    }
}

fn push_list(obj: &mut Map<String, Value>, key: &str, v: Value) {
    let l = obj.entry(key.to_string()).or_insert_with(|| json!([]));
    if let Some(l) = l.as_array_mut() {
        l.push(v);
    }
}

fn object_meta(b: &[u8]) -> Result<Value, ProtoError> {
    let mut r = Reader::new(b);
    let mut m = Map::new();
    while let Some((num, f)) = r.next()? {
        match (num, f) {
            (1, Field::Bytes(x)) => {
                m.insert("name".into(), json!(string(x)));
            }
            (2, Field::Bytes(x)) => {
                m.insert("generateName".into(), json!(string(x)));
            }
            (3, Field::Bytes(x)) => {
                m.insert("namespace".into(), json!(string(x)));
            }
            (11, Field::Bytes(x)) => push_map(&mut m, "labels", map_entry(x, false)?),
            (12, Field::Bytes(x)) => push_map(&mut m, "annotations", map_entry(x, false)?),
            (14, Field::Bytes(x)) => push_list(&mut m, "finalizers", json!(string(x))),
            _ => {}
        }
    }
    // Empty strings are protobuf's absent values.
    m.retain(|_, v| v.as_str() != Some(""));
    Ok(Value::Object(m))
}

fn decode_kind(kind: &str, raw: &[u8]) -> Result<Map<String, Value>, ProtoError> {
    let mut r = Reader::new(raw);
    let mut obj = Map::new();
    while let Some((num, f)) = r.next()? {
        let Field::Bytes(x) = f else {
            if kind == "ConfigMap" && num == 4 {
                obj.insert("immutable".into(), json!(true));
            }
            continue;
        };
        match (kind, num) {
            (_, 1) => {
                obj.insert("metadata".into(), object_meta(x)?);
            }
            ("Namespace", 2) => {
                let mut spec = Map::new();
                let mut sr = Reader::new(x);
                while let Some((n, f)) = sr.next()? {
                    if let (1, Field::Bytes(s)) = (n, f) {
                        push_list(&mut spec, "finalizers", json!(string(s)));
                    }
                }
                obj.insert("spec".into(), Value::Object(spec));
            }
            ("Namespace", _) => {}
            ("ConfigMap", 2) => push_map(&mut obj, "data", map_entry(x, false)?),
            ("ConfigMap", 3) => push_map(&mut obj, "binaryData", map_entry(x, true)?),
            ("Secret", 2) => push_map(&mut obj, "data", map_entry(x, true)?),
            ("Secret", 3) => {
                obj.insert("type".into(), json!(string(x)));
            }
            ("Secret", 4) => push_map(&mut obj, "stringData", map_entry(x, false)?),
            _ => {}
        }
    }
    Ok(obj)
}

/// Decodes a `k8s\0`-prefixed protobuf body into the JSON object it carries.
pub fn decode(body: &[u8]) -> Result<Value, ProtoError> {
    let inner = body.strip_prefix(b"k8s\x00").ok_or(ProtoError::Malformed)?;
    let mut r = Reader::new(inner);
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    while let Some((num, f)) = r.next()? {
        match (num, f) {
            (1, Field::Bytes(tm)) => {
                let mut t = Reader::new(tm);
                while let Some((n, f)) = t.next()? {
                    match (n, f) {
                        (1, Field::Bytes(x)) => api_version = string(x),
                        (2, Field::Bytes(x)) => kind = string(x),
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(x)) => raw = x,
            _ => {}
        }
    }
    if !matches!(kind.as_str(), "Namespace" | "ConfigMap" | "Secret") {
        return Err(ProtoError::UnsupportedKind(kind));
    }
    let mut obj = decode_kind(&kind, raw)?;
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    Ok(Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(num: u8, bytes: &[u8]) -> Vec<u8> {
        let mut v = vec![(num << 3) | 2, u8::try_from(bytes.len()).unwrap()];
        v.extend_from_slice(bytes);
        v
    }

    #[test]
    fn decodes_a_namespace_as_kubectl_create_sends_it() {
        let meta = field(1, b"demo");
        let ns = [field(1, &meta), field(2, &[]), field(3, &[])].concat();
        let tm = [field(1, b"v1"), field(2, b"Namespace")].concat();
        let unknown = [field(1, &tm), field(2, &ns), field(3, b""), field(4, b"")].concat();
        let body = [b"k8s\x00".to_vec(), unknown].concat();
        let obj = decode(&body).unwrap();
        assert_eq!(
            obj,
            json!({"metadata": {"name": "demo"}, "spec": {}, "apiVersion": "v1", "kind": "Namespace"})
        );
    }

    #[test]
    fn decodes_configmap_data() {
        let entry = [field(1, b"k"), field(2, b"v")].concat();
        let cm = [field(1, &field(1, b"c")), field(2, &entry)].concat();
        let tm = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
        let body = [b"k8s\x00".to_vec(), field(1, &tm), field(2, &cm)].concat();
        assert_eq!(decode(&body).unwrap()["data"], json!({"k": "v"}));
    }
}
