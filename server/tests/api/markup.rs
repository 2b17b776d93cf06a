//! Reading TwiML / Plivo XML back into a tree, to assert on elements and
//! attributes rather than on strings.

use std::collections::BTreeMap;

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use quick_xml::{Reader, XmlVersion};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    pub name: String,
    pub attrs: BTreeMap<String, String>,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).map(String::as_str)
    }

    pub fn child_names(&self) -> Vec<&str> {
        self.children.iter().map(|c| c.name.as_str()).collect()
    }

    /// The first child named `name`; fails the test when there is none.
    pub fn child(&self, name: &str) -> &Node {
        self.children
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no <{name}> in <{}>: {:?}", self.name, self.child_names()))
    }
}

/// Parses a whole document; fails the test when it is not well-formed.
pub fn parse(xml: &str) -> Node {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<Node> = vec![Node::default()];
    loop {
        match reader
            .read_event()
            .unwrap_or_else(|e| panic!("not well-formed XML ({e}): {xml}"))
        {
            Event::Start(e) => stack.push(node(&e)),
            Event::Empty(e) => {
                let n = node(&e);
                stack.last_mut().unwrap().children.push(n);
            }
            Event::End(_) => {
                let done = stack.pop().unwrap();
                stack.last_mut().unwrap().children.push(done);
            }
            Event::Text(t) => {
                let text = t.xml10_content().into_owned();
                stack.last_mut().unwrap().text.push_str(&text);
            }
            // The reader reports each `&…;` in text as its own event.
            Event::GeneralRef(r) => {
                let node = stack.last_mut().unwrap();
                match r.resolve_char_ref().unwrap() {
                    Some(c) => node.text.push(c),
                    None => node
                        .text
                        .push_str(resolve_predefined_entity(&r).expect("a predefined entity")),
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut document = stack.pop().unwrap();
    assert_eq!(document.children.len(), 1, "one root element: {xml}");
    document.children.remove(0)
}

fn node(e: &quick_xml::events::BytesStart<'_>) -> Node {
    Node {
        name: e.name().as_ref().to_owned(),
        attrs: e
            .attributes()
            .map(|a| {
                let a = a.unwrap();
                (
                    a.key.as_ref().to_owned(),
                    a.normalized_value(XmlVersion::Explicit1_0)
                        .unwrap()
                        .into_owned(),
                )
            })
            .collect(),
        ..Node::default()
    }
}
