//! The updates waiting for `getUpdates` or the webhook, and the users they introduce.

use crate::{FakeState, Pending, stars};
use serde_json::{Value, json};

/// Queues an update for `getUpdates` (the caller pokes `Shared::updates`): assigns its id
/// when absent and remembers what it says about users, chats and Stars charges.
pub(crate) fn queue_update(st: &mut FakeState, mut update: Value) -> i64 {
    let id = assign_update_id(st, &mut update);
    remember_users(st, &update);
    remember_user_message(st, &update);
    stars::remember(st, &update);
    st.pending.push(Pending {
        id,
        update,
        forced: false,
        delivered: false,
    });
    id
}

pub(crate) fn assign_update_id(st: &mut FakeState, update: &mut Value) -> i64 {
    let id = match update.get("update_id").and_then(Value::as_i64) {
        Some(id) => id,
        None => {
            let id = st.next_update_id;
            update["update_id"] = json!(id);
            id
        }
    };
    st.next_update_id = st.next_update_id.max(id + 1);
    id
}

/// A user's message in a private chat joins that chat's transcript (once, however often the
/// update is delivered).
pub(crate) fn remember_user_message(st: &mut FakeState, update: &Value) {
    let Some(m) = update.get("message") else {
        return;
    };
    let (Some(chat), Some(id)) = (
        m.get("chat")
            .and_then(|c| c.get("id"))
            .and_then(Value::as_i64),
        m.get("message_id").and_then(Value::as_i64),
    ) else {
        return;
    };
    if chat > 0 && st.messages.insert((chat, id), m.clone()).is_none() {
        st.transcript.push((chat, id, false));
    }
}

pub(crate) fn remember_users(st: &mut FakeState, v: &Value) {
    match v {
        Value::Object(m) => {
            if let Some(from) = m.get("from")
                && let (Some(id), Some(false)) = (
                    from.get("id").and_then(Value::as_i64),
                    from.get("is_bot").and_then(Value::as_bool),
                )
            {
                st.users.insert(id, from.clone());
            }
            m.values().for_each(|x| remember_users(st, x));
        }
        Value::Array(a) => a.iter().for_each(|x| remember_users(st, x)),
        _ => {}
    }
}
