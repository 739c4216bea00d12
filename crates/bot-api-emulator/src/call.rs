//! One request the emulator received, as tests read it back.

use crate::http::as_i64;
use serde_json::Value;
use std::time::Instant;

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    /// Position in [`BotApiEmulator::calls`].
    pub index: usize,
    /// Canonical camelCase name from the schema (`sendMessage`), or the name as sent when the
    /// method is unknown.
    pub method: String,
    /// Decoded parameters (form/multipart/query strings decoded by declared type).
    pub params: Value,
    /// When the request arrived.
    pub at: Instant,
    /// The request's Content-Type (`application/json`, `multipart/form-data; boundary=…`).
    pub content_type: String,
    /// HTTP status the fake answered with.
    pub status: u16,
    /// `true` when the answer was not `ok` (fault, unknown method, invalid call).
    pub failed: bool,
    /// The full JSON body the fake answered with (`{"ok":true,"result":...}`).
    pub response: Value,
    /// Schema violations of this call.
    pub violations: Vec<String>,
    /// Files the call uploaded (multipart parts with a file name), with their contents.
    pub files: Vec<Upload>,
}

/// One file a call uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The parameter it was sent as (`document`, `certificate`…).
    pub field: String,
    pub file_name: String,
    pub bytes: Vec<u8>,
}

impl Call {
    /// The `chat_id` parameter as a number, if there is one.
    pub fn chat_id(&self) -> Option<i64> {
        as_i64(self.params.get("chat_id")?)
    }
    /// A parameter that is a string; `None` when absent or of another type.
    pub fn str_param(&self, name: &str) -> Option<&str> {
        self.params.get(name)?.as_str()
    }
    /// The message text (the `text` parameter), if any.
    pub fn text(&self) -> Option<&str> {
        self.str_param("text")
    }
    /// The file uploaded as parameter `field`.
    pub fn file(&self, field: &str) -> Option<&Upload> {
        self.files.iter().find(|f| f.field == field)
    }
    /// `result.message_id` of a successful call that returned a Message.
    pub fn result_message_id(&self) -> Option<i64> {
        self.response.get("result")?.get("message_id")?.as_i64()
    }
    /// All `callback_data` of the inline keyboard in `reply_markup`, row by row.
    pub fn callback_data(&self) -> Vec<String> {
        self.params
            .pointer("/reply_markup/inline_keyboard")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_array)
            .flatten()
            .filter_map(|b| b.get("callback_data")?.as_str().map(str::to_owned))
            .collect()
    }
}
