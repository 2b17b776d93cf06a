//! The XML writer every provider's markup shares (TwiML and its kin, Plivo
//! XML): the document and its `<Response>`, spoken texts, text XML can
//! carry, and the size of the buffer to write a document into. Each
//! dialect supplies only how one [`Step`] is written.
//!
//! Every tag, attribute and text goes through `quick_xml::Writer`, so caller
//! supplied text (names, URLs with `&` in the query) is always escaped and
//! the document is always well-formed. Voice routes must answer with valid
//! markup under all circumstances (docs/providers.md), so rendering cannot fail.

use std::borrow::Cow;
use std::io;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesStart, BytesText, Event};

use crate::flow::model::{CallScript, Step};

/// Where a dialect writes.
pub(super) type XmlWriter<'a> = Writer<&'a mut Vec<u8>>;

/// Renders `script` as `<?xml version="1.0" encoding="UTF-8"?><Response>…
/// </Response>`, each step by `write_step`. An empty script renders
/// `<Response/>` (on a whisper leg that bridges the call; elsewhere the
/// provider simply ends it).
pub(super) fn render_document(
    script: &CallScript,
    mut write_step: impl FnMut(&mut XmlWriter<'_>, &Step) -> io::Result<()>,
) -> String {
    // One buffer sized up front for the whole document: this runs for every
    // webhook of every call.
    let mut out = Vec::with_capacity(capacity_hint(script));
    let mut w = Writer::new(&mut out);
    let written = (|| {
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        if script.0.is_empty() {
            return w.write_event(Event::Empty(BytesStart::new("Response")));
        }
        w.create_element("Response").write_inner_content(|w| {
            for step in &script.0 {
                write_step(w, step)?;
            }
            Ok(())
        })?;
        Ok(())
    })();
    written.expect("writing into a Vec<u8> cannot fail");
    // quick-xml copies the `&str`s it is given plus ASCII markup, so the
    // bytes are UTF-8 whatever the script holds.
    String::from_utf8(out).expect("quick-xml writes only the UTF-8 text it is given")
}

/// `<name>text</name>`, the verb that speaks `text` (`Say`, `Speak`), left
/// out when nothing is left to say: providers report an empty one as
/// invalid, and saying nothing is the same as not speaking.
pub(super) fn write_spoken(w: &mut XmlWriter<'_>, name: &str, text: &str) -> io::Result<()> {
    let text = xml_chars(text);
    if text.is_empty() {
        return Ok(());
    }
    w.create_element(name)
        .write_text_content(BytesText::new(&text))?;
    Ok(())
}

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
fn capacity_hint(script: &CallScript) -> usize {
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
                        + d.record_url.as_deref().map_or(0, |url| VERB + text(url))
                        + d.ring_tone
                            .as_ref()
                            .map_or(0, |tone| 16 + tone.as_str().len())
                }
                Step::Record { action_url, .. } => text(action_url),
                Step::Gather {
                    action_url, prompt, ..
                } => text(action_url) + VERB + text(prompt),
                Step::Hangup | Step::Reject => VERB,
            }
    })
}
