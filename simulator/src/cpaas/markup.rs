//! Markup as a CPaaS reads it: the element tree of the workspace's one
//! markup parser (`ringrelay_markup`), its texts trimmed as a provider reads
//! them, checked against the provider's grammar (which verbs, nouns and
//! attributes it knows, and where) before anything of it runs.

use crate::Error;

pub use ringrelay_markup::Element;

/// An attribute holding a whole number, as a provider reads it.
pub(crate) trait NumberAttr {
    /// Attribute `name` as a whole number, or `default` when absent.
    fn number(&self, name: &str, default: u64) -> Result<u64, Error>;
}

impl NumberAttr for Element {
    fn number(&self, name: &str, default: u64) -> Result<u64, Error> {
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
}

/// Reads a document: well-formed XML whose one root element is
/// `<Response>`, every text trimmed.
pub fn read(document: &str) -> Result<Element, String> {
    let mut root = ringrelay_markup::parse(document)?;
    if root.name != "Response" {
        return Err(format!(
            "the root element is <{}>, not <Response>",
            root.name
        ));
    }
    trim(&mut root);
    Ok(root)
}

fn trim(element: &mut Element) {
    element.text = element.text.trim().to_owned();
    element.children.iter_mut().for_each(trim);
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
    fn a_document_is_one_response_its_texts_trimmed() {
        let root = read("<Response>\n  <Say> Hello </Say>\n</Response>").unwrap();
        assert_eq!(root.children[0].text, "Hello");
        assert!(root.text.is_empty());
        let err = read("<Reply/>").unwrap_err();
        assert!(err.contains("not <Response>"), "{err}");
        assert!(read("<Response>").is_err());
    }
}
