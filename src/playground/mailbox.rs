//! The mailbox pane's source: the `.eml` files the service wrote to its mail folder (its
//! embedded default when no SMTP server is configured), newest last.

use mail_parser::{Address, MessageParser};
use serde::Serialize;
use std::path::Path;

/// A letter's envelope, for the list.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub id: String,
    pub to: String,
    pub subject: String,
    pub date: String,
}

/// A whole letter, both parts.
#[derive(Debug, Clone, Serialize)]
pub struct Letter {
    pub id: String,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub date: String,
    pub text: Option<String>,
    pub html: Option<String>,
}

/// Every letter in `dir`, oldest first (a letter still being written is left for next time).
pub fn list(dir: &Path) -> Vec<Summary> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(std::time::SystemTime, String)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let id = name.strip_suffix(".eml")?.to_string();
            let modified = e.metadata().and_then(|m| m.modified()).ok()?;
            Some((modified, id))
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|(_, id)| {
            let l = read(dir, &id)?;
            Some(Summary {
                id: l.id,
                to: l.to,
                subject: l.subject,
                date: l.date,
            })
        })
        .collect()
}

/// One letter by its id (the file name without `.eml`); `None` for anything else.
pub fn read(dir: &Path, id: &str) -> Option<Letter> {
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        || id.starts_with('.')
    {
        return None;
    }
    let raw = std::fs::read(dir.join(format!("{id}.eml"))).ok()?;
    let m = MessageParser::default().parse(&raw)?;
    // A file cut short mid-write has no body yet.
    m.body_text(0).or_else(|| m.body_html(0))?;
    Some(Letter {
        id: id.to_string(),
        from: addresses(m.from()),
        to: addresses(m.to()),
        subject: m.subject().unwrap_or("(no subject)").to_string(),
        date: m.date().map(|d| d.to_rfc3339()).unwrap_or_default(),
        text: m.body_text(0).map(|t| t.into_owned()),
        html: m.body_html(0).map(|t| t.into_owned()),
    })
}

fn addresses(a: Option<&Address>) -> String {
    a.map(|a| {
        a.iter()
            .filter_map(|addr| addr.address())
            .collect::<Vec<_>>()
            .join(", ")
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_leave_the_folder() {
        let dir = std::env::temp_dir();
        for id in ["../etc/passwd", "", ".hidden", "a/b", "a\\b"] {
            assert!(read(&dir, id).is_none(), "{id}");
        }
    }
}
