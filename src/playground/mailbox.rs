//! The mailbox pane's source: the `.eml` files the service wrote to its mail folder (its
//! embedded default when no SMTP server is configured), newest last.

use mail_parser::{Address, MessageParser};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

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

/// The mail folder, with the envelopes already read: the page polls the list every 700 ms,
/// and a letter's file never changes once complete, so each is parsed once.
pub struct Mailbox {
    dir: PathBuf,
    seen: Mutex<HashMap<String, (SystemTime, Summary)>>,
}

impl Mailbox {
    pub fn new(dir: PathBuf) -> Mailbox {
        Mailbox {
            dir,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Every letter, oldest first (a letter still being written is left for next time).
    pub fn list(&self) -> Vec<Summary> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut files: Vec<(SystemTime, String)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let id = name.strip_suffix(".eml")?.to_string();
                let modified = e.metadata().and_then(|m| m.modified()).ok()?;
                Some((modified, id))
            })
            .collect();
        files.sort();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        files
            .into_iter()
            .filter_map(|(modified, id)| {
                if let Some((at, summary)) = seen.get(&id)
                    && *at == modified
                {
                    return Some(summary.clone());
                }
                let l = self.read(&id)?;
                let summary = Summary {
                    id: l.id,
                    to: l.to,
                    subject: l.subject,
                    date: l.date,
                };
                seen.insert(id, (modified, summary.clone()));
                Some(summary)
            })
            .collect()
    }

    /// One whole letter by its id.
    pub fn read(&self, id: &str) -> Option<Letter> {
        read(&self.dir, id)
    }
}

/// One letter by its id (the file name without `.eml`); `None` for anything else.
fn read(dir: &Path, id: &str) -> Option<Letter> {
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

    fn letter(subject: &str) -> String {
        format!(
            "From: shop@example.com\r\nTo: carol@example.com\r\nSubject: {subject}\r\n\
             Date: Sat, 21 Nov 2026 12:00:00 +0000\r\nContent-Type: text/plain\r\n\r\nHello.\r\n"
        )
    }

    #[test]
    fn letters_are_listed_once_read_and_again_when_their_file_changes() {
        let dir = tempfile::tempdir().expect("dir");
        let mailbox = Mailbox::new(dir.path().to_path_buf());
        assert!(mailbox.list().is_empty());
        std::fs::write(dir.path().join("gb.1.a.eml"), letter("First")).expect("write");
        std::fs::write(dir.path().join("notes.txt"), "not a letter").expect("write");
        let listed = mailbox.list();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].to.as_str(), listed[0].subject.as_str()),
            ("carol@example.com", "First")
        );
        assert_eq!(
            mailbox.list()[0].subject,
            "First",
            "served from what was read"
        );
        // A file rewritten later (a newer modification time) is read again.
        let file = std::fs::File::options()
            .write(true)
            .open(dir.path().join("gb.1.a.eml"))
            .expect("open");
        std::fs::write(dir.path().join("gb.1.a.eml"), letter("Second")).expect("rewrite");
        file.set_modified(SystemTime::now() + std::time::Duration::from_secs(5))
            .expect("mtime");
        assert_eq!(mailbox.list()[0].subject, "Second");
        assert_eq!(mailbox.read("gb.1.a").map(|l| l.text.is_some()), Some(true));
    }
}
