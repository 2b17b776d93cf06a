//! CPaaS markup read back into a tree: TwiML and its dialects (TeXML,
//! cXML), and Plivo XML. The one parser of the workspace: the simulator
//! executes what it reads, the tests and the server's renderer tests and
//! fuzz targets assert on elements and attributes rather than on strings.
//! It checks well-formedness and that there is one root element; what a
//! provider accepts inside it is for its reader to say.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

/// One element: its name, its attributes in document order (unescaped),
/// the text directly inside it (unescaped, untrimmed) and its children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The value of attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The attributes' names, in document order.
    pub fn attr_names(&self) -> Vec<&str> {
        self.attrs.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The children's names, in order.
    pub fn child_names(&self) -> Vec<&str> {
        self.children.iter().map(|c| c.name.as_str()).collect()
    }

    /// No attributes, children or text.
    pub fn is_bare(&self) -> bool {
        self.attrs.is_empty() && self.children.is_empty() && self.text.is_empty()
    }

    fn from_start(start: &BytesStart<'_>) -> Result<Self, String> {
        let name = start.name().as_ref().to_owned();
        let mut attrs = Vec::new();
        for attr in start.attributes() {
            let attr = attr.map_err(|e| format!("<{name}>: {e}"))?;
            let value = attr
                .normalized_value(XmlVersion::Explicit1_0)
                .map_err(|e| format!("<{name}>: {e}"))?;
            let key = attr.key.as_ref().to_owned();
            attrs.push((key, value.into_owned()));
        }
        Ok(Self {
            name,
            attrs,
            ..Self::default()
        })
    }
}

/// Parses a whole document: well-formed XML with exactly one root element
/// (a declaration, comments and processing instructions around it are
/// allowed; CDATA is text).
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
            Event::Empty(start) => close(Element::from_start(&start)?, &mut open, &mut root)?,
            Event::End(_) => {
                let element = open
                    .pop()
                    .ok_or("not well-formed XML: unexpected end tag")?;
                close(element, &mut open, &mut root)?;
            }
            Event::Text(text) => append_text(&mut open, &text.xml10_content())?,
            Event::CData(data) => append_text(&mut open, &data)?,
            // Since quick-xml 0.38 each `&…;` in text is an event of its own.
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => {
                        let name = reference.to_string();
                        resolve_predefined_entity(&name)
                            .ok_or_else(|| format!("not well-formed XML: unknown entity &{name};"))?
                            .to_owned()
                    }
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
    root.ok_or_else(|| "not well-formed XML: no root element".into())
}

fn close(element: Element, open: &mut [Element], root: &mut Option<Element>) -> Result<(), String> {
    match open.last_mut() {
        Some(parent) => parent.children.push(element),
        None if root.is_none() => *root = Some(element),
        None => return Err("not well-formed XML: more than one root element".into()),
    }
    Ok(())
}

fn append_text(open: &mut [Element], text: &str) -> Result<(), String> {
    match open.last_mut() {
        Some(element) => {
            element.text.push_str(text);
            Ok(())
        }
        // Line breaks around the root are not content.
        None if text.trim().is_empty() => Ok(()),
        None => Err("not well-formed XML: text outside the root element".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_becomes_a_tree_with_unescaped_text_and_attributes() {
        let root = parse(
            r#"<?xml version="1.0"?><Response><Dial action="/a?x=1&amp;y=2"><Number> +1 &amp; 2&#33;</Number></Dial><Say><![CDATA[<hi>]]></Say><Hangup/></Response>"#,
        )
        .unwrap();
        assert_eq!(root.child_names(), ["Dial", "Say", "Hangup"]);
        let dial = root.child("Dial").unwrap();
        assert_eq!(dial.attr("action"), Some("/a?x=1&y=2"));
        assert_eq!(dial.attr_names(), ["action"]);
        assert_eq!(dial.children[0].text, " +1 & 2!", "untrimmed");
        assert_eq!(root.children[1].text, "<hi>");
        assert!(root.children[2].is_bare());
        assert_eq!(root.child("Record"), None);
    }

    #[test]
    fn documents_that_are_not_one_well_formed_element_are_refused() {
        for (document, expected) in [
            ("<Response><Say>hi</Response>", "well-formed"),
            ("<Response/><Response/>", "more than one root"),
            ("<Response/>text", "outside the root"),
            ("", "no root"),
            ("<Response>", "never closed"),
            ("<Response>&nbsp;</Response>", "unknown entity"),
        ] {
            let err = parse(document).unwrap_err();
            assert!(err.contains(expected), "{document}: {err}");
        }
        assert_eq!(parse("\n<Reply/>\n").unwrap().name, "Reply");
    }
}
