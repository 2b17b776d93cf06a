//! Test and fuzzing support: a rendered TwiML or Plivo XML document read
//! back into a tree, so that renderer tests and the fuzz targets
//! (`crate::fuzzing`) assert on elements and attributes (and on
//! well-formedness) rather than on strings.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

/// One element of the parsed-back document.
#[derive(Debug)]
pub(crate) struct Node {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    fn new(start: &BytesStart<'_>) -> Self {
        let attrs = start
            .attributes()
            .map(|a| {
                let a = a.expect("well-formed attribute");
                let value = a
                    .normalized_value(XmlVersion::Explicit1_0)
                    .expect("attribute value unescapes");
                (a.key.as_ref().to_owned(), value.into_owned())
            })
            .collect();
        Self {
            name: start.name().as_ref().to_owned(),
            attrs,
            text: String::new(),
            children: Vec::new(),
        }
    }
}

/// What the renderers' unit tests ask of an element.
#[cfg(test)]
impl Node {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn attr_names(&self) -> Vec<&str> {
        self.attrs.iter().map(|(k, _)| k.as_str()).collect()
    }

    pub fn child_names(&self) -> Vec<&str> {
        self.children.iter().map(|c| c.name.as_str()).collect()
    }

    /// No attributes, children or text.
    pub fn is_bare(&self) -> bool {
        self.attrs.is_empty() && self.children.is_empty() && self.text.is_empty()
    }
}

/// Parses a rendered document back into a tree, asserting along the way
/// that it is a single well-formed `<Response>` after the declaration.
pub(crate) fn parse(xml: &str) -> Node {
    assert!(
        xml.starts_with(r#"<?xml version="1.0" encoding="UTF-8"?><Response"#),
        "{xml}"
    );
    let mut reader = Reader::from_str(xml);
    let mut saw_decl = false;
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let mut close = |node: Node, stack: &mut Vec<Node>| match stack.last_mut() {
        Some(parent) => parent.children.push(node),
        None => {
            assert!(root.is_none(), "a second root element in {xml}");
            root = Some(node);
        }
    };
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Decl(decl) => {
                assert!(!saw_decl && stack.is_empty(), "{xml}");
                assert_eq!(decl.version().unwrap(), "1.0");
                assert_eq!(decl.encoding().unwrap().unwrap(), "UTF-8");
                saw_decl = true;
            }
            Event::Start(start) => stack.push(Node::new(&start)),
            Event::Empty(start) => close(Node::new(&start), &mut stack),
            Event::End(end) => {
                let node = stack.pop().expect("an end tag closes an open element");
                assert_eq!(end.name().as_ref(), node.name);
                close(node, &mut stack);
            }
            Event::Text(text) => stack
                .last_mut()
                .expect("no text outside the root element")
                .text
                .push_str(&text.xml10_content()),
            // Since quick-xml 0.38 the reader reports each `&…;` in text
            // as its own event.
            Event::GeneralRef(reference) => {
                let node = stack.last_mut().expect("no text outside the root");
                match reference.resolve_char_ref().expect("valid char ref") {
                    Some(c) => node.text.push(c),
                    None => node.text.push_str(
                        resolve_predefined_entity(&reference).expect("predefined entity"),
                    ),
                }
            }
            Event::Eof => break,
            other => panic!("unexpected {other:?} in {xml}"),
        }
    }
    assert!(saw_decl && stack.is_empty(), "{xml}");
    let root = root.expect("a root element");
    assert_eq!(root.name, "Response");
    assert!(root.text.is_empty(), "{xml}");
    root
}
