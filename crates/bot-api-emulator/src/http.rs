//! HTTP side of the fake: routing, parameter parsing (JSON, urlencoded, multipart, query),
//! validation, faults and recording.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::answers::{answer, get_updates};
use super::schema::schema;
use super::{Call, Fault, Shared, TOKEN, Upload};

/// One request on its way through the fake, recorded as a [`Call`] when answered.
struct Incoming {
    at: Instant,
    content_type: String,
    method: String,
    params: Value,
    violations: Vec<String>,
    files: Vec<Upload>,
}

pub(super) async fn handle(
    State(shared): State<Arc<Shared>>,
    Path((bot, method)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let canonical = schema()
        .method(&method)
        .map_or_else(|| method.clone(), |d| d.name.clone());
    let mut violations = Vec::new();
    let mut files = Vec::new();
    let params = parse_params(
        &canonical,
        &content_type,
        query.as_deref(),
        &body,
        &mut files,
    )
    .unwrap_or_else(|e| {
        violations.push(format!("{canonical}: unparsable request body: {e}"));
        Value::Object(Map::new())
    });
    let mut req = Incoming {
        at,
        content_type,
        method: canonical,
        params,
        violations,
        files,
    };
    let (status, body) = respond(&shared, &bot, &mut req).await;
    finish(&shared, req, status, body)
}

/// Decides the answer: token check, unknown method, schema, faults, then the canned answer.
async fn respond(shared: &Shared, bot: &str, req: &mut Incoming) -> (StatusCode, Value) {
    if let Some(refused) = refuse_unknown(bot, req) {
        return refused;
    }
    let schema_violations = schema().validate_call(&req.method, &req.params);
    // Telegram ignores unknown fields but rejects missing or mistyped ones.
    let serious = schema_violations
        .iter()
        .find(|v| !v.contains(": unknown field `"))
        .cloned();
    req.violations.extend(schema_violations);
    if let Some(fault) = injected_fault(shared, req).await {
        return fault;
    }
    let lenient = shared.lock().lenient;
    if let Some(v) = serious.filter(|_| !lenient) {
        let desc = format!("Bad Request: {v}");
        return (StatusCode::BAD_REQUEST, error_body(400, &desc, None));
    }
    if let Some(wait) = over_limit(shared, req) {
        return too_many_requests(wait.as_secs_f64().ceil().max(1.0) as u32);
    }
    let result = if req.method == "getUpdates" {
        get_updates(shared, &req.params).await
    } else if req.method == "refundStarPayment" {
        match super::stars::refund(shared, &req.params) {
            Ok(v) => v,
            Err(desc) => return (StatusCode::BAD_REQUEST, error_body(400, &desc, None)),
        }
    } else {
        answer(&mut shared.lock(), &req.method, &req.params)
    };
    (StatusCode::OK, json!({"ok": true, "result": result}))
}

/// A request for another bot's token, or for a method the Bot API does not have.
fn refuse_unknown(bot: &str, req: &mut Incoming) -> Option<(StatusCode, Value)> {
    if bot != format!("bot{TOKEN}") {
        req.violations.push(format!(
            "{}: request for token path `{bot}`, expected `bot{TOKEN}`",
            req.method
        ));
        return Some((
            StatusCode::UNAUTHORIZED,
            error_body(401, "Unauthorized", None),
        ));
    }
    if schema().method(&req.method).is_none() {
        req.violations
            .push(format!("{}: unknown Bot API method", req.method));
        return Some((
            StatusCode::BAD_REQUEST,
            error_body(400, "Not Found: method not found", None),
        ));
    }
    None
}

/// The answer of a fault a test injected for this call, if any (a delay just waits).
async fn injected_fault(shared: &Shared, req: &Incoming) -> Option<(StatusCode, Value)> {
    match take_fault(shared, req)? {
        Fault::TooManyRequests { retry_after } => Some(too_many_requests(retry_after)),
        Fault::ServerError => Some((
            StatusCode::BAD_GATEWAY,
            error_body(502, "Bad Gateway", None),
        )),
        Fault::Forbidden(d) => Some((StatusCode::FORBIDDEN, error_body(403, d, None))),
        Fault::BadRequest(d) => Some((StatusCode::BAD_REQUEST, error_body(400, &d, None))),
        Fault::Delay(d) => {
            tokio::time::sleep(d).await;
            None
        }
    }
}

/// Telegram's 429 with its `retry_after`.
fn too_many_requests(retry_after: u32) -> (StatusCode, Value) {
    let desc = format!("Too Many Requests: retry after {retry_after}");
    let params = json!({"retry_after": retry_after});
    (
        StatusCode::TOO_MANY_REQUESTS,
        error_body(429, &desc, Some(params)),
    )
}

/// With limits switched on: how long a send that would break one must wait (and counts it).
fn over_limit(shared: &Shared, req: &Incoming) -> Option<std::time::Duration> {
    let mut st = shared.lock();
    let chat = req.params.get("chat_id").and_then(as_i64);
    let limits = st.limits.as_mut()?;
    if !super::Limits::counts(&req.method) {
        return None;
    }
    let paid = req
        .params
        .get("allow_paid_broadcast")
        .is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true"));
    let wait = limits.admit(chat, paid, Instant::now()).err()?;
    st.too_many += 1;
    Some(wait)
}

/// Takes one use of the first fault rule matching this call's method (and chat).
fn take_fault(shared: &Shared, req: &Incoming) -> Option<Fault> {
    let mut st = shared.lock();
    let chat = req.params.get("chat_id").and_then(as_i64);
    let lc = req.method.to_ascii_lowercase();
    let i = st
        .faults
        .iter()
        .position(|r| r.method_lc == lc && (r.chat_id.is_none() || r.chat_id == chat))?;
    let rule = &mut st.faults[i];
    rule.remaining -= 1;
    let fault = rule.fault.clone();
    if rule.remaining == 0 {
        st.faults.remove(i);
    }
    Some(fault)
}

/// Records the call (waking waiters) and turns the answer into an HTTP response.
fn finish(shared: &Shared, req: Incoming, status: StatusCode, body: Value) -> Response {
    for v in &req.violations {
        eprintln!("[fake-bot-api] VIOLATION {v}");
    }
    {
        let mut st = shared.lock();
        let index = st.calls.len();
        st.violations.extend(req.violations.iter().cloned());
        st.calls.push(Call {
            index,
            method: req.method,
            params: req.params,
            at: req.at,
            content_type: req.content_type,
            status: status.as_u16(),
            failed: !status.is_success(),
            response: body.clone(),
            violations: req.violations,
            files: req.files,
        });
    }
    shared.changed.notify_waiters();
    let headers = [(header::CONTENT_TYPE, "application/json")];
    (status, headers, body.to_string()).into_response()
}

fn error_body(code: u16, description: &str, parameters: Option<Value>) -> Value {
    let mut b = json!({"ok": false, "error_code": code, "description": description});
    if let Some(p) = parameters {
        b["parameters"] = p;
    }
    b
}

/// The parameters of a call; the files it uploaded (multipart) go to `files`.
fn parse_params(
    method: &str,
    content_type: &str,
    query: Option<&str>,
    body: &[u8],
    files: &mut Vec<Upload>,
) -> Result<Value, String> {
    let mut pairs: Vec<(String, String)> = match query {
        Some(q) if !q.is_empty() => {
            serde_urlencoded::from_str(q).map_err(|e| format!("query string: {e}"))?
        }
        _ => Vec::new(),
    };
    let ct = content_type.to_ascii_lowercase();
    let trimmed = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map(|i| &body[i..])
        .unwrap_or(&[]);
    if ct.starts_with("multipart/form-data") {
        let (fields, uploads) = parse_multipart(content_type, body)?;
        pairs.extend(attach(fields, uploads, files));
    } else if ct.starts_with("application/x-www-form-urlencoded") {
        pairs.extend(
            serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
                .map_err(|e| format!("form: {e}"))?,
        );
    } else if !trimmed.is_empty() {
        // application/json (or no content type but a JSON body).
        let v: Value = serde_json::from_slice(trimmed).map_err(|e| format!("JSON: {e}"))?;
        let Value::Object(mut obj) = v else {
            return Err("JSON body is not an object".into());
        };
        if let Value::Object(q) = schema().decode_string_params(method, pairs) {
            for (k, v) in q {
                obj.entry(k).or_insert(v);
            }
        }
        return Ok(Value::Object(obj));
    }
    Ok(schema().decode_string_params(method, pairs))
}

/// A request's text parameters, by name, in order.
type Fields = Vec<(String, String)>;

/// A small multipart/form-data parser: text fields, and file parts as `<file NAME, N bytes>`
/// (what the schema checks) with their contents kept as uploads.
fn parse_multipart(content_type: &str, body: &[u8]) -> Result<(Fields, Vec<Upload>), String> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| {
            p.strip_prefix("boundary=")
                .or_else(|| p.strip_prefix("BOUNDARY="))
        })
        .map(|b| b.trim_matches('"'))
        .ok_or("multipart without boundary")?;
    let delim = format!("--{boundary}").into_bytes();
    let mut out = Vec::new();
    let mut uploads = Vec::new();
    let mut positions = Vec::new();
    let mut i = 0;
    while let Some(p) = find(&body[i..], &delim) {
        positions.push(i + p);
        i += p + delim.len();
    }
    if positions.is_empty() {
        return Err("multipart body without boundary delimiter".into());
    }
    for w in positions.windows(2) {
        let mut part = &body[w[0] + delim.len()..w[1]];
        part = part.strip_prefix(b"\r\n").unwrap_or(part);
        part = part.strip_suffix(b"\r\n").unwrap_or(part);
        let (head, content) = match find(part, b"\r\n\r\n") {
            Some(p) => (&part[..p], &part[p + 4..]),
            None => return Err("multipart part without header/body separator".into()),
        };
        let head = String::from_utf8_lossy(head);
        let disposition = head
            .split("\r\n")
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
            .ok_or("multipart part without Content-Disposition")?;
        let name = disposition_param(disposition, "name").ok_or("multipart part without name")?;
        let value = match disposition_param(disposition, "filename") {
            Some(f) => {
                let placeholder = format!("<file {f}, {} bytes>", content.len());
                uploads.push(Upload {
                    field: name.clone(),
                    file_name: f,
                    bytes: content.to_vec(),
                });
                placeholder
            }
            None => String::from_utf8_lossy(content).into_owned(),
        };
        out.push((name, value));
    }
    Ok((out, uploads))
}

/// Resolves Telegram's `attach://NAME`: a parameter naming a file part sent under its own
/// name. The parameter takes the file's placeholder and the upload the parameter's name; the
/// part itself is not a parameter. Returns the parameters; the uploads go to `files`.
fn attach(
    mut fields: Vec<(String, String)>,
    mut uploads: Vec<Upload>,
    files: &mut Vec<Upload>,
) -> Vec<(String, String)> {
    let mut parts = Vec::new();
    for (param, value) in &mut fields {
        let Some(name) = value.strip_prefix("attach://").map(str::to_owned) else {
            continue;
        };
        if let Some(u) = uploads.iter_mut().find(|u| u.field == name) {
            *value = format!("<file {}, {} bytes>", u.file_name, u.bytes.len());
            u.field = param.clone();
            parts.push(name);
        }
    }
    fields.retain(|(k, _)| !parts.contains(k));
    files.append(&mut uploads);
    fields
}

fn disposition_param(disposition: &str, key: &str) -> Option<String> {
    disposition.split(';').map(str::trim).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(key)).then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub(super) fn as_i64(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str()?.parse().ok())
}

pub(super) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_parser_reads_text_and_file_parts() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"url\"\r\n\r\nhttps://h/x\r\n--XyZ\r\nContent-Disposition: form-data; name=\"certificate\"; filename=\"c.pem\"\r\nContent-Type: application/octet-stream\r\n\r\nabc\r\n--XyZ--\r\n";
        let (p, files) = parse_multipart("multipart/form-data; boundary=XyZ", body).expect("parse");
        assert_eq!(files.len(), 1);
        assert_eq!(
            (files[0].field.as_str(), files[0].file_name.as_str()),
            ("certificate", "c.pem")
        );
        assert_eq!(files[0].bytes, b"abc");
        assert_eq!(
            p,
            vec![
                ("url".into(), "https://h/x".into()),
                ("certificate".into(), "<file c.pem, 3 bytes>".into())
            ]
        );
    }
}
