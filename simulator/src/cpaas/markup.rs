//! Markup as a CPaaS reads it: a small element tree parsed with quick-xml,
//! checked against the provider's grammar (which verbs, nouns and attributes
//! it knows, and where) before anything of it runs.

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use crate::Error;

/// One element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    /// The text directly inside it, trimmed.
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// An attribute holding a whole number, or `default` when absent.
    pub fn number(&self, name: &str, default: u64) -> Result<u64, Error> {
        match self.attr(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| {
                Error::broken(format!(
                    "invalid markup: <{} {name}={v:?}>, {name} must be a whole number",
                    self.name
                ))
            }),
        }
    }

    fn from_start(start: &BytesStart<'_>) -> Result<Self, String> {
        let name = start.name().as_ref().to_owned();
        let mut attrs = Vec::new();
        for attr in start.attributes() {
            let attr = attr.map_err(|e| format!("<{name}>: {e}"))?;
            let value = attr
                .normalized_value(XmlVersion::Explicit1_0)
                .map_err(|e| format!("<{name}>: {e}"))?;
            attrs.push((attr.key.as_ref().to_owned(), value.into_owned()));
        }
        Ok(Self {
            name,
            attrs,
            text: String::new(),
            children: Vec::new(),
        })
    }
}

/// Parses a document: well-formed XML whose one root element is
/// `<Response>`.
pub fn parse(document: &str) -> Result<Element, String> {
    let mut reader = Reader::from_str(document);
    reader.config_mut().check_end_names = true;
    let mut open: Vec<Element> = Vec::new();
    let mut root = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("not well-formed XML: {e}"))?;
        match event {
            Event::Start(start) => open.push(Element::from_start(&start)?),
            Event::Empty(start) => {
                let element = Element::from_start(&start)?;
                close(element, &mut open, &mut root)?;
            }
            Event::End(_) => {
                let element = open
                    .pop()
                    .ok_or("not well-formed XML: unexpected end tag")?;
                close(element, &mut open, &mut root)?;
            }
            Event::Text(text) => append_text(&mut open, &text.xml10_content())?,
            Event::CData(data) => append_text(&mut open, &data)?,
            Event::GeneralRef(reference) => {
                let name = reference.to_string();
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => quick_xml::escape::resolve_predefined_entity(&name)
                        .ok_or_else(|| format!("not well-formed XML: unknown entity &{name};"))?
                        .to_owned(),
                };
                append_text(&mut open, &resolved)?;
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if let Some(unclosed) = open.last() {
        return Err(format!(
            "not well-formed XML: <{}> is never closed",
            unclosed.name
        ));
    }
    let root = root.ok_or("not well-formed XML: no root element")?;
    if root.name != "Response" {
        return Err(format!(
            "the root element is <{}>, not <Response>",
            root.name
        ));
    }
    Ok(root)
}

fn close(
    mut element: Element,
    open: &mut [Element],
    root: &mut Option<Element>,
) -> Result<(), String> {
    element.text = element.text.trim().to_owned();
    match open.last_mut() {
        Some(parent) => parent.children.push(element),
        None if root.is_none() => *root = Some(element),
        None => return Err("not well-formed XML: more than one root element".into()),
    }
    Ok(())
}

fn append_text(open: &mut [Element], text: &str) -> Result<(), String> {
    let Some(element) = open.last_mut() else {
        // Line breaks around the root are not content.
        return if text.trim().is_empty() {
            Ok(())
        } else {
            Err("not well-formed XML: text outside the root element".into())
        };
    };
    element.text.push_str(text);
    Ok(())
}

/// What a provider knows of one element.
pub struct Rule {
    pub name: &'static str,
    pub attrs: &'static [&'static str],
    /// The elements it may contain.
    pub children: &'static [&'static str],
}

/// A provider's markup language: every element it knows.
pub struct Grammar {
    pub provider: &'static str,
    /// What `<Response>` may contain.
    pub verbs: &'static [&'static str],
    pub rules: &'static [Rule],
}

impl Grammar {
    /// Checks every element below `root` against the grammar.
    pub fn check(&self, root: &Element) -> Result<(), String> {
        self.check_children(root, self.verbs)
    }

    fn check_children(&self, parent: &Element, allowed: &[&str]) -> Result<(), String> {
        for child in &parent.children {
            if !allowed.contains(&child.name.as_str()) {
                return Err(format!(
                    "{} does not know <{}> inside <{}>",
                    self.provider, child.name, parent.name
                ));
            }
            let rule = self
                .rules
                .iter()
                .find(|r| r.name == child.name)
                .expect("every allowed element has a rule");
            if let Some((attr, _)) = child
                .attrs
                .iter()
                .find(|(a, _)| !rule.attrs.contains(&a.as_str()))
            {
                return Err(format!(
                    "{} does not know the attribute {attr} of <{}>",
                    self.provider, child.name
                ));
            }
            self.check_children(child, rule.children)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_becomes_a_tree_with_unescaped_text_and_attributes() {
        let root = parse(
            r#"<?xml version="1.0"?><Response><Dial action="/a?x=1&amp;y=2"><Number>+1 &amp; 2</Number></Dial><Hangup/></Response>"#,
        )
        .unwrap();
        assert_eq!(root.children.len(), 2);
        let dial = &root.children[0];
        assert_eq!(dial.attr("action"), Some("/a?x=1&y=2"));
        assert_eq!(dial.children[0].text, "+1 & 2");
        assert_eq!(root.children[1].name, "Hangup");
    }

    #[test]
    fn documents_that_are_not_one_response_are_refused() {
        for (document, expected) in [
            ("<Response><Say>hi</Response>", "well-formed"),
            ("<Response/><Response/>", "more than one root"),
            ("<Reply/>", "not <Response>"),
            ("", "no root"),
            ("<Response>", "never closed"),
        ] {
            let err = parse(document).unwrap_err();
            assert!(err.contains(expected), "{document}: {err}");
        }
    }
}
