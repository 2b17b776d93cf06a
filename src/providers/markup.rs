//! What the providers' markup renderers share: text XML can carry, and
//! the size of the buffer to write a document into.

use std::borrow::Cow;

use super::{CallScript, Step};

/// `s` without the characters XML 1.0 cannot carry at all, even escaped
/// (control characters other than tab, line feed and carriage return, and
/// U+FFFE/U+FFFF). quick-xml escapes markup but passes those through, and one
/// of them in a spoken text would make the provider reject the whole document.
/// Borrows, without copying, in the normal case where there are none.
pub(super) fn xml_chars(s: &str) -> Cow<'_, str> {
    fn forbidden(c: char) -> bool {
        (c < '\u{20}' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
    }
    if s.chars().any(forbidden) {
        Cow::Owned(s.chars().filter(|&c| !forbidden(c)).collect())
    } else {
        Cow::Borrowed(s)
    }
}

/// A generous estimate of the document's length, so that the buffer is
/// allocated once: markup is roughly constant per verb, text is copied (and
/// sometimes escaped, hence the slack).
pub(super) fn capacity_hint(script: &CallScript) -> usize {
    const DOCUMENT: usize = 64; // declaration and <Response></Response>
    const VERB: usize = 96; // tags, attribute names and numbers of one verb
    let text = |s: &str| s.len() + s.len() / 8;
    script.0.iter().fold(DOCUMENT, |total, step| {
        total
            + VERB
            + match step {
                Step::Say(s) => text(s),
                Step::Dial(d) => {
                    text(&d.action_url)
                        + d.targets
                            .iter()
                            .map(|t| VERB + 32 + t.pickup_url.as_deref().map_or(0, text))
                            .sum::<usize>()
                        + d.screen_url.as_deref().map_or(0, text)
                        + d.leg_events_url.as_deref().map_or(0, text)
                }
                Step::Record { action_url, .. } => text(action_url),
                Step::Gather {
                    action_url, prompt, ..
                } => text(action_url) + VERB + text(prompt),
                Step::Hangup => 0,
            }
    })
}
