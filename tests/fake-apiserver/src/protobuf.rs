//! Just enough of the Kubernetes protobuf encoding to read what `kubectl create namespace|configmap|secret|
//! deployment` send: kubectl's typed clients post `application/vnd.kubernetes.protobuf` and do not fall back to
//! JSON.
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
    Varint(u64),
    Fixed,
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
            0 => Field::Varint(self.varint()?),
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| ProtoError::Malformed)?;
                let end = self.pos.checked_add(len).ok_or(ProtoError::Malformed)?;
                let bytes = self.buf.get(self.pos..end).ok_or(ProtoError::Malformed)?;
                self.pos = end;
                Field::Bytes(bytes)
            }
            1 => {
                self.pos += 8;
                Field::Fixed
            }
            5 => {
                self.pos += 4;
                Field::Fixed
            }
            _ => return Err(ProtoError::Malformed),
        };
        Ok(Some((num, field)))
    }
}

fn string(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// How one protobuf field becomes JSON.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    /// A plain int32/int64: zero is "unset" (`omitempty` in JSON).
    Int,
    /// A pointer int (`replicas`): zero is a value.
    OptInt,
    /// A plain bool: false is "unset".
    Bool,
    Msg(&'static [F]),
    RepStr,
    RepMsg(&'static [F]),
    /// `map<string, string>`
    StrMap,
    /// `map<string, bytes>`, base64 in JSON.
    BytesMap,
}

/// One field of a message: number, JSON name, kind.
type F = (u64, &'static str, Kind);

const OWNER_REF: &[F] = &[
    (1, "kind", Kind::Str),
    (3, "name", Kind::Str),
    (4, "uid", Kind::Str),
    (5, "apiVersion", Kind::Str),
    (6, "controller", Kind::Bool),
    (7, "blockOwnerDeletion", Kind::Bool),
];
const OBJECT_META: &[F] = &[
    (1, "name", Kind::Str),
    (2, "generateName", Kind::Str),
    (3, "namespace", Kind::Str),
    (11, "labels", Kind::StrMap),
    (12, "annotations", Kind::StrMap),
    (13, "ownerReferences", Kind::RepMsg(OWNER_REF)),
    (14, "finalizers", Kind::RepStr),
];
const NAMESPACE: &[F] = &[
    (1, "metadata", Kind::Msg(OBJECT_META)),
    (2, "spec", Kind::Msg(&[(1, "finalizers", Kind::RepStr)])),
];
const CONFIG_MAP: &[F] = &[
    (1, "metadata", Kind::Msg(OBJECT_META)),
    (2, "data", Kind::StrMap),
    (3, "binaryData", Kind::BytesMap),
    (4, "immutable", Kind::Bool),
];
const SECRET: &[F] = &[
    (1, "metadata", Kind::Msg(OBJECT_META)),
    (2, "data", Kind::BytesMap),
    (3, "type", Kind::Str),
    (4, "stringData", Kind::StrMap),
    (5, "immutable", Kind::Bool),
];
const LABEL_SELECTOR: &[F] = &[
    (1, "matchLabels", Kind::StrMap),
    (
        2,
        "matchExpressions",
        Kind::RepMsg(&[
            (1, "key", Kind::Str),
            (2, "operator", Kind::Str),
            (3, "values", Kind::RepStr),
        ]),
    ),
];
const CONTAINER: &[F] = &[
    (1, "name", Kind::Str),
    (2, "image", Kind::Str),
    (3, "command", Kind::RepStr),
    (4, "args", Kind::RepStr),
    (5, "workingDir", Kind::Str),
    (
        6,
        "ports",
        Kind::RepMsg(&[
            (1, "name", Kind::Str),
            (2, "hostPort", Kind::Int),
            (3, "containerPort", Kind::Int),
            (4, "protocol", Kind::Str),
        ]),
    ),
    (
        7,
        "env",
        Kind::RepMsg(&[(1, "name", Kind::Str), (2, "value", Kind::Str)]),
    ),
    (8, "resources", Kind::Msg(&[])),
    (14, "imagePullPolicy", Kind::Str),
];
const POD_SPEC: &[F] = &[
    (2, "containers", Kind::RepMsg(CONTAINER)),
    (3, "restartPolicy", Kind::Str),
    (4, "terminationGracePeriodSeconds", Kind::OptInt),
    (6, "dnsPolicy", Kind::Str),
    (8, "serviceAccountName", Kind::Str),
    (10, "nodeName", Kind::Str),
    (19, "schedulerName", Kind::Str),
    (20, "initContainers", Kind::RepMsg(CONTAINER)),
];
const POD_TEMPLATE: &[F] = &[
    (1, "metadata", Kind::Msg(OBJECT_META)),
    (2, "spec", Kind::Msg(POD_SPEC)),
];
const DEPLOYMENT: &[F] = &[
    (1, "metadata", Kind::Msg(OBJECT_META)),
    (
        2,
        "spec",
        Kind::Msg(&[
            (1, "replicas", Kind::OptInt),
            (2, "selector", Kind::Msg(LABEL_SELECTOR)),
            (3, "template", Kind::Msg(POD_TEMPLATE)),
            (4, "strategy", Kind::Msg(&[(1, "type", Kind::Str)])),
            (5, "minReadySeconds", Kind::Int),
            (6, "revisionHistoryLimit", Kind::OptInt),
            (7, "paused", Kind::Bool),
            (9, "progressDeadlineSeconds", Kind::OptInt),
        ]),
    ),
];

fn map_entry(b: &[u8], bytes_as_base64: bool) -> Result<(String, Value), ProtoError> {
    let mut r = Reader::new(b);
    let (mut k, mut v) = (String::new(), json!(""));
    while let Some((num, f)) = r.next()? {
        match (num, f) {
            (1, Field::Bytes(x)) => k = string(x),
            (2, Field::Bytes(x)) if bytes_as_base64 => {
                use base64::Engine as _;
                v = json!(base64::engine::general_purpose::STANDARD.encode(x));
            }
            (2, Field::Bytes(x)) => v = json!(string(x)),
            _ => {}
        }
    }
    Ok((k, v))
}

/// Decodes one message by its field table; unknown fields are skipped, empty strings are protobuf's "unset".
fn message(b: &[u8], fields: &[F]) -> Result<Value, ProtoError> {
    let mut r = Reader::new(b);
    let mut obj = Map::new();
    while let Some((num, f)) = r.next()? {
        let Some((_, name, kind)) = fields.iter().find(|(n, _, _)| *n == num) else {
            continue;
        };
        let name = (*name).to_string();
        match (*kind, f) {
            (Kind::Str, Field::Bytes(x)) if !x.is_empty() => {
                obj.insert(name, json!(string(x)));
            }
            (Kind::Int, Field::Varint(0)) | (Kind::Bool, Field::Varint(0)) => {}
            (Kind::Int | Kind::OptInt, Field::Varint(v)) => {
                // int32/int64 fields: two's complement in 64 bits.
                obj.insert(name, json!(v as i64));
            }
            (Kind::Bool, Field::Varint(_)) => {
                obj.insert(name, json!(true));
            }
            (Kind::Msg(sub), Field::Bytes(x)) => {
                obj.insert(name, message(x, sub)?);
            }
            (Kind::RepStr, Field::Bytes(x)) => push_list(&mut obj, &name, json!(string(x))),
            (Kind::RepMsg(sub), Field::Bytes(x)) => push_list(&mut obj, &name, message(x, sub)?),
            (Kind::StrMap, Field::Bytes(x)) => push_map(&mut obj, &name, map_entry(x, false)?),
            (Kind::BytesMap, Field::Bytes(x)) => push_map(&mut obj, &name, map_entry(x, true)?),
            _ => {}
        }
    }
    Ok(Value::Object(obj))
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
    let fields = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "Secret") => SECRET,
        ("apps/v1", "Deployment") => DEPLOYMENT,
        _ => return Err(ProtoError::UnsupportedKind(kind)),
    };
    let mut obj = match message(raw, fields)? {
        Value::Object(m) => m,
        _ => Map::new(),
    };
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
