//! Validation of Bot API calls against the official method/type list in
//! `../shared/telegram/bot-api.json` (Bot API 10.1, PaulSonOfLars/telegram-bot-api-spec).
//!
//! The checks: unknown method, missing required field, unknown field, wrong type — recursively
//! into object types. Union types (e.g. `BotCommandScope`) pass when any subtype passes; a
//! subtype's `type` discriminator ("Scope type, must be chat") is checked too, so the matching
//! subtype is reported when none passes.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Map, Value};

/// The vendored copy of `../shared/telegram/bot-api.json` (MIT, see `vendor/telegram/LICENSE`),
/// built into the binary so the playground runs from a bare clone. The integration suite
/// checks that it is byte-for-byte the shared file (`schema_parity`).
pub const SCHEMA_JSON: &str = include_str!("../vendor/telegram/bot-api.json");

#[derive(Debug, Deserialize)]
struct RawSchema {
    version: String,
    methods: HashMap<String, RawDef>,
    types: HashMap<String, RawDef>,
}

#[derive(Debug, Deserialize)]
struct RawDef {
    name: String,
    #[serde(default)]
    fields: Option<Vec<FieldDef>>,
    #[serde(default)]
    subtypes: Option<Vec<String>>,
    #[serde(default)]
    returns: Vec<String>,
}

/// One parameter of a method, or one field of a type.
#[derive(Debug, Clone, Deserialize)]
pub struct FieldDef {
    pub name: String,
    pub types: Vec<String>,
    pub required: bool,
    #[serde(default)]
    pub description: String,
}

/// A Bot API method: its parameters and what it returns.
#[derive(Debug)]
pub struct MethodDef {
    /// Canonical camelCase name, e.g. `sendMessage`.
    pub name: String,
    pub fields: Vec<FieldDef>,
    /// e.g. `["Message"]`, `["Boolean"]`, `["Array of Update"]`.
    pub returns: Vec<String>,
}

/// A Bot API type: an object with fields, a union of subtypes, or opaque.
#[derive(Debug)]
pub enum TypeDef {
    Object {
        fields: Vec<FieldDef>,
    },
    Union {
        subtypes: Vec<String>,
    },
    /// No fields and no subtypes (`CallbackGame`, `ForumTopicClosed`, `InputFile`…).
    Opaque,
}

/// The Bot API schema: its version, methods and types.
#[derive(Debug)]
pub struct Schema {
    pub version: String,
    /// Keyed by lower-cased method name.
    methods: HashMap<String, MethodDef>,
    types: HashMap<String, TypeDef>,
}

/// The schema, loaded once per test process.
pub fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| Schema::from_json(SCHEMA_JSON))
}

impl Schema {
    /// Reads a schema file; panics when it cannot be read or parsed.
    pub fn load(path: &str) -> Schema {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read Bot API schema at {path}: {e}"));
        Schema::from_json(&text)
    }

    /// Parses schema JSON; panics when it does not have the expected shape.
    pub fn from_json(text: &str) -> Schema {
        let raw: RawSchema =
            serde_json::from_str(text).expect("bot-api.json does not have the expected shape");
        let methods = raw
            .methods
            .into_values()
            .map(|m| {
                (
                    m.name.to_ascii_lowercase(),
                    MethodDef {
                        name: m.name,
                        fields: m.fields.unwrap_or_default(),
                        returns: m.returns,
                    },
                )
            })
            .collect();
        let types = raw
            .types
            .into_values()
            .map(|t| {
                let def = match (t.fields, t.subtypes) {
                    (_, Some(subtypes)) => TypeDef::Union { subtypes },
                    (Some(fields), None) => TypeDef::Object { fields },
                    (None, None) => TypeDef::Opaque,
                };
                (t.name, def)
            })
            .collect();
        Schema {
            version: raw.version,
            methods,
            types,
        }
    }

    /// Looks a method up case-insensitively (`SendMessage`, `sendmessage`, `sendMessage`).
    pub fn method(&self, name: &str) -> Option<&MethodDef> {
        self.methods.get(&name.to_ascii_lowercase())
    }

    /// A type by its exact name, e.g. `Message`.
    pub fn type_def(&self, name: &str) -> Option<&TypeDef> {
        self.types.get(name)
    }

    /// Validates the parameters of one call. `params` must be the decoded parameters (see
    /// [`Schema::decode_string_params`] for form/multipart/query bodies).
    pub fn validate_call(&self, method: &str, params: &Value) -> Vec<String> {
        let Some(def) = self.method(method) else {
            return vec![format!("{method}: unknown Bot API method")];
        };
        let mut out = Vec::new();
        match params {
            Value::Object(map) => self.check_fields(&def.name, &def.fields, map, &mut out),
            other => out.push(format!(
                "{}: parameters must be a JSON object, got {}",
                def.name,
                kind(other)
            )),
        }
        out
    }

    /// Validates a value against a named type (e.g. `"Update"`, `"Message"`).
    pub fn validate_type(&self, type_name: &str, value: &Value) -> Vec<String> {
        let mut out = Vec::new();
        self.check_one(type_name, value, type_name, &mut out);
        out
    }

    /// Form, multipart and query-string bodies carry every value as a string: numbers as
    /// decimal text, booleans as `true`/`false`, objects and arrays JSON-encoded. Decode each
    /// value whose declared types allow something other than a string, when the decoded
    /// value fits one of them. Unknown fields are decoded when they hold JSON
    /// objects/arrays/numbers/booleans.
    pub fn decode_string_params(&self, method: &str, params: Vec<(String, String)>) -> Value {
        let def = self.method(method);
        let mut map = Map::new();
        for (name, text) in params {
            let field = def.and_then(|d| d.fields.iter().find(|f| f.name == name));
            let decoded = match field {
                Some(f) => {
                    let non_string: Vec<String> = f
                        .types
                        .iter()
                        .filter(|t| *t != "String" && *t != "InputFile")
                        .cloned()
                        .collect();
                    match serde_json::from_str::<Value>(&text) {
                        Ok(v) if !non_string.is_empty() && !v.is_string() => {
                            let mut errs = Vec::new();
                            if self.check_any(&name, &v, &non_string, &mut errs) {
                                v
                            } else if f.types.iter().any(|t| t == "String" || t == "InputFile") {
                                Value::String(text)
                            } else {
                                // Keep the decoded value so the type error names the real type.
                                v
                            }
                        }
                        _ => Value::String(text),
                    }
                }
                None => match serde_json::from_str::<Value>(&text) {
                    Ok(
                        v
                        @ (Value::Object(_) | Value::Array(_) | Value::Number(_) | Value::Bool(_)),
                    ) => v,
                    _ => Value::String(text),
                },
            };
            map.insert(name, decoded);
        }
        Value::Object(map)
    }

    fn check_fields(
        &self,
        path: &str,
        fields: &[FieldDef],
        map: &Map<String, Value>,
        out: &mut Vec<String>,
    ) {
        for f in fields {
            match map.get(&f.name) {
                None | Some(Value::Null) => {
                    if f.required {
                        out.push(format!(
                            "{path}: missing required field `{}` ({})",
                            f.name,
                            f.types.join(" or ")
                        ));
                    }
                }
                Some(v) => {
                    let p = format!("{path}.{}", f.name);
                    self.check_any(&p, v, &f.types, out);
                    if let Some(expected) = discriminator(f)
                        && v.as_str() != Some(expected.as_str())
                    {
                        out.push(format!("{p}: must be \"{expected}\", got {v}"));
                    }
                }
            }
        }
        for key in map.keys() {
            if !fields.iter().any(|f| &f.name == key) {
                out.push(format!("{path}: unknown field `{key}`"));
            }
        }
    }

    /// Checks `v` against alternatives; pushes the violations of the best alternative when
    /// none fits. Returns whether one fits.
    fn check_any(&self, path: &str, v: &Value, types: &[String], out: &mut Vec<String>) -> bool {
        let mut best: Option<Vec<String>> = None;
        for t in types {
            let mut errs = Vec::new();
            self.check_one(path, v, t, &mut errs);
            if errs.is_empty() {
                return true;
            }
            if best.as_ref().is_none_or(|b| errs.len() < b.len()) {
                best = Some(errs);
            }
        }
        match best {
            Some(errs) if types.len() == 1 => out.extend(errs),
            Some(errs) => {
                // Several alternatives: if the value has the wrong JSON kind for all of them,
                // one line is clearer than one per alternative.
                if errs.len() == 1 && errs[0].starts_with(&format!("{path}: expected ")) {
                    out.push(format!(
                        "{path}: expected {}, got {}",
                        types.join(" or "),
                        describe(v)
                    ));
                } else {
                    out.extend(errs);
                }
            }
            None => out.push(format!("{path}: field has no declared type")),
        }
        false
    }

    fn check_one(&self, path: &str, v: &Value, t: &str, out: &mut Vec<String>) {
        if let Some(inner) = t.strip_prefix("Array of ") {
            match v {
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        self.check_one(&format!("{path}[{i}]"), item, inner, out);
                    }
                }
                other => out.push(format!("{path}: expected {t}, got {}", describe(other))),
            }
            return;
        }
        let ok = match t {
            "Integer" => v.is_i64() || v.is_u64(),
            "Float" => v.is_number(),
            "String" => v.is_string(),
            "Boolean" => v.is_boolean(),
            "True" => v == &Value::Bool(true),
            // A file_id, an HTTP URL or `attach://<name>`; uploaded parts are recorded as strings too.
            "InputFile" => v.is_string(),
            _ => {
                self.check_named(path, v, t, out);
                return;
            }
        };
        if !ok {
            out.push(format!("{path}: expected {t}, got {}", describe(v)));
        }
    }

    fn check_named(&self, path: &str, v: &Value, t: &str, out: &mut Vec<String>) {
        match self.types.get(t) {
            None => out.push(format!("{path}: schema has no type `{t}`")),
            Some(TypeDef::Opaque) => {
                if !v.is_object() {
                    out.push(format!(
                        "{path}: expected {t} (object), got {}",
                        describe(v)
                    ));
                }
            }
            Some(TypeDef::Object { fields }) => match v {
                Value::Object(map) => self.check_fields(path, fields, map, out),
                other => out.push(format!(
                    "{path}: expected {t} (object), got {}",
                    describe(other)
                )),
            },
            Some(TypeDef::Union { subtypes }) => {
                // Rank failing subtypes: one whose discriminator (`type: "chat"`) matches the
                // value first, then by number of violations.
                let mut best: Option<(bool, String, Vec<String>)> = None;
                for st in subtypes {
                    let mut errs = Vec::new();
                    self.check_one(path, v, st, &mut errs);
                    if errs.is_empty() {
                        return;
                    }
                    let tag_mismatch = self.discriminator_mismatch(st, v);
                    if best
                        .as_ref()
                        .is_none_or(|(bm, _, b)| (tag_mismatch, errs.len()) < (*bm, b.len()))
                    {
                        best = Some((tag_mismatch, st.clone(), errs));
                    }
                }
                let best = best.map(|(_, st, errs)| (st, errs));
                match best {
                    Some((st, errs)) => {
                        out.extend(
                            errs.into_iter()
                                .map(|e| format!("{e} (as {t} variant {st})")),
                        );
                    }
                    None => out.push(format!("{path}: union {t} has no subtypes")),
                }
            }
        }
    }
}

impl Schema {
    /// `true` when `st` has a discriminator field whose required value `v` does not carry.
    fn discriminator_mismatch(&self, st: &str, v: &Value) -> bool {
        let Some(TypeDef::Object { fields }) = self.types.get(st) else {
            return false;
        };
        fields.iter().any(|f| match discriminator(f) {
            Some(expected) => v.get(&f.name).and_then(Value::as_str) != Some(expected.as_str()),
            None => false,
        })
    }
}

/// `type`-like fields whose description says "must be chat" / "always “emoji”".
fn discriminator(f: &FieldDef) -> Option<String> {
    if !f.required
        || !matches!(f.name.as_str(), "type" | "source" | "status")
        || f.types != ["String"]
    {
        return None;
    }
    let d = f.description.as_str();
    let rest = if let Some(i) = d.find("must be ") {
        &d[i + "must be ".len()..]
    } else if let Some(i) = d.find("always ") {
        &d[i + "always ".len()..]
    } else {
        return None;
    };
    if rest.starts_with("one of") {
        return None;
    }
    let word: String = rest
        .trim_start_matches(['"', '“', '”', '\''])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!word.is_empty()).then_some(word)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a float",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn describe(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 60 {
        let mut cut = 57;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    format!("{} {s}", kind(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_loads() {
        let s = schema();
        assert!(s.method("sendMessage").is_some());
        assert!(
            s.method("SendMessage").is_some(),
            "lookup must be case-insensitive"
        );
        assert_eq!(
            s.method("SENDINVOICE").map(|m| m.name.as_str()),
            Some("sendInvoice")
        );
        assert!(s.type_def("InlineKeyboardMarkup").is_some());
    }

    #[test]
    fn valid_send_message_passes() {
        let v = schema().validate_call(
            "SendMessage",
            &json!({
                "chat_id": 42,
                "text": "hello",
                "parse_mode": "HTML",
                "link_preview_options": {"is_disabled": true},
                "reply_parameters": {"message_id": 7},
                "reply_markup": {"inline_keyboard": [[
                    {"text": "Join", "callback_data": "join:1"},
                    {"text": "Site", "url": "https://example.com"}
                ]]}
            }),
        );
        assert!(v.is_empty(), "{v:#?}");
    }

    #[test]
    fn chat_id_may_be_username_string() {
        let v = schema().validate_call("sendMessage", &json!({"chat_id": "@channel", "text": "x"}));
        assert!(v.is_empty(), "{v:#?}");
    }

    #[test]
    fn missing_chat_id_fails() {
        let v = schema().validate_call("sendMessage", &json!({"text": "hello"}));
        assert_eq!(v.len(), 1, "{v:#?}");
        assert!(v[0].contains("missing required field `chat_id`"), "{v:#?}");
    }

    #[test]
    fn unknown_method_fails() {
        let v = schema().validate_call("sendTelepathy", &json!({}));
        assert_eq!(v.len(), 1);
        assert!(v[0].contains("unknown Bot API method"), "{v:#?}");
    }

    #[test]
    fn wrong_type_fails() {
        let v = schema().validate_call("sendMessage", &json!({"chat_id": 1, "text": 5}));
        assert_eq!(v.len(), 1, "{v:#?}");
        assert!(v[0].contains("sendMessage.text: expected String"), "{v:#?}");

        let v = schema().validate_call("sendMessage", &json!({"chat_id": true, "text": "x"}));
        assert_eq!(v.len(), 1, "{v:#?}");
        assert!(
            v[0].contains("chat_id: expected Integer or String"),
            "{v:#?}"
        );

        let v = schema().validate_call(
            "sendInvoice",
            &json!({"chat_id": 1, "title": "t", "description": "d", "payload": "p", "currency": "EUR",
                    "prices": [{"label": "x", "amount": "100"}]}),
        );
        assert_eq!(v.len(), 1, "{v:#?}");
        assert!(
            v[0].contains("prices[0].amount: expected Integer"),
            "{v:#?}"
        );
    }

    #[test]
    fn unknown_nested_field_in_reply_markup_fails() {
        let v = schema().validate_call(
            "sendMessage",
            &json!({"chat_id": 1, "text": "x",
                    "reply_markup": {"inline_keyboard": [[{"text": "a", "callback_data": "b", "colour": "red"}]]}}),
        );
        assert_eq!(v.len(), 1, "{v:#?}");
        assert!(
            v[0].contains("reply_markup.inline_keyboard[0][0]: unknown field `colour`"),
            "{v:#?}"
        );
    }

    #[test]
    fn missing_nested_required_field_fails() {
        let v = schema().validate_call(
            "setMyCommands",
            &json!({"commands": [{"command": "start"}]}),
        );
        assert_eq!(v.len(), 1, "{v:#?}");
        assert!(
            v[0].contains("commands[0]: missing required field `description`"),
            "{v:#?}"
        );
    }

    #[test]
    fn unions_match_any_subtype_and_check_discriminator() {
        let ok = schema().validate_call(
            "setMyCommands",
            &json!({"commands": [], "scope": {"type": "chat", "chat_id": 5}}),
        );
        assert!(ok.is_empty(), "{ok:#?}");
        let bad = schema().validate_call(
            "setMyCommands",
            &json!({"commands": [], "scope": {"type": "chat"}}),
        );
        assert_eq!(bad.len(), 1, "{bad:#?}");
        assert!(
            bad[0].contains("missing required field `chat_id`"),
            "{bad:#?}"
        );
        let bad = schema().validate_call(
            "setMyCommands",
            &json!({"commands": [], "scope": {"type": "galaxy"}}),
        );
        assert!(!bad.is_empty());
    }

    #[test]
    fn float_accepts_integers_and_input_file_accepts_strings() {
        let v = schema().validate_call(
            "sendLocation",
            &json!({"chat_id": 1, "latitude": 52, "longitude": 13.4}),
        );
        assert!(v.is_empty(), "{v:#?}");
        let v = schema().validate_call(
            "sendPhoto",
            &json!({"chat_id": 1, "photo": "attach://photo"}),
        );
        assert!(v.is_empty(), "{v:#?}");
    }

    #[test]
    fn string_params_are_decoded_by_declared_type() {
        let s = schema();
        let decoded = s.decode_string_params(
            "setWebhook",
            vec![
                ("url".into(), "https://example.com/hook".into()),
                ("max_connections".into(), "40".into()),
                (
                    "allowed_updates".into(),
                    r#"["message","callback_query"]"#.into(),
                ),
                ("drop_pending_updates".into(), "true".into()),
                ("secret_token".into(), "123".into()),
            ],
        );
        assert_eq!(
            decoded,
            json!({"url": "https://example.com/hook", "max_connections": 40,
                   "allowed_updates": ["message", "callback_query"], "drop_pending_updates": true,
                   "secret_token": "123"})
        );
        assert!(s.validate_call("setWebhook", &decoded).is_empty());

        let decoded = s.decode_string_params(
            "sendMessage",
            vec![
                ("chat_id".into(), "-100".into()),
                ("text".into(), "42".into()),
            ],
        );
        assert_eq!(decoded, json!({"chat_id": -100, "text": "42"}));

        let decoded = s.decode_string_params("sendMessage", vec![("chat_id".into(), "1".into())]);
        assert_eq!(s.validate_call("sendMessage", &decoded).len(), 1);
        let decoded = s.decode_string_params(
            "sendMessage",
            vec![
                ("chat_id".into(), "1".into()),
                ("text".into(), "x".into()),
                ("disable_notification".into(), "yes".into()),
            ],
        );
        let v = s.validate_call("sendMessage", &decoded);
        assert_eq!(v.len(), 1, "{v:#?}");
    }
}
