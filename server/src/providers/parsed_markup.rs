//! Test and fuzzing support: a rendered TwiML or Plivo XML document read
//! back into a tree by the workspace's one markup parser
//! (`ringrelay_markup`), so that renderer tests and the fuzz targets
//! (`crate::fuzzing`) assert on elements and attributes rather than on
//! strings, checking on the way what every rendering must be.

pub(crate) use ringrelay_markup::Element;

/// The declaration every rendering starts with.
const DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// Parses a rendered document back into a tree, asserting that it is the
/// declaration, then a single well-formed `<Response>` with no text of its
/// own.
pub(crate) fn parse(xml: &str) -> Element {
    let body = xml
        .strip_prefix(DECLARATION)
        .unwrap_or_else(|| panic!("no declaration: {xml}"));
    assert!(body.starts_with("<Response"), "{xml}");
    let root = ringrelay_markup::parse(xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
    assert_eq!(root.name, "Response");
    assert!(root.text.is_empty(), "{xml}");
    root
}
