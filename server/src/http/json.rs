//! JSON request bodies: a body that is not JSON is 400; JSON of the wrong
//! shape is 422 naming the field, and so is a field nobody reads (with the
//! one it most likely meant: `crate::input`).

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::domain::error::FieldError;

pub fn parse_json_body<T: DeserializeOwned + Serialize>(body: &[u8]) -> Result<T, ApiError> {
    let input: serde_json::Value = serde_json::from_slice(body).map_err(|err| {
        ApiError::MalformedBody(format!(
            "the body is not valid JSON (it stops making sense at line {}, column {})",
            err.line(),
            err.column()
        ))
    })?;
    let parsed: T = serde_path_to_error::deserialize(&input).map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        FieldError::new(field, strip_position(&err.into_inner().to_string()))
    })?;
    // What was read, written back: a field of the input that is not there
    // was dropped.
    let understood = serde_json::to_value(&parsed).map_err(|err| {
        ApiError::Unexpected(anyhow::Error::new(err).context("re-reading a body"))
    })?;
    match crate::input::unknown_field(&input, &understood) {
        Some(unknown) => Err(unknown.into()),
        None => Ok(parsed),
    }
}

/// serde_json ends data errors with "at line L column C", which says
/// nothing once the field is named.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::ResponseError as _;

    #[derive(serde::Serialize, serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Body {
        items: Vec<Item>,
    }

    #[derive(serde::Serialize, serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Item {
        n: u32,
    }

    #[test]
    fn syntax_errors_are_400_and_shape_errors_name_the_field() {
        let err = parse_json_body::<Body>(b"{\"items\": [").unwrap_err();
        assert_eq!(err.status_code(), 400);
        let err = parse_json_body::<Body>(br#"{"items": [{"n": 1}, {"n": "two"}]}"#).unwrap_err();
        assert_eq!(err.status_code(), 422);
        assert!(
            err.to_string().starts_with("items[1].n: invalid type"),
            "{err}"
        );
        let err = parse_json_body::<Body>(b"[]").unwrap_err();
        assert!(err.to_string().starts_with("body: "), "{err}");
        let err = parse_json_body::<Body>(b"{}").unwrap_err();
        assert_eq!(err.to_string(), "body: missing field `items`");
    }

    proptest::proptest! {
        #[test]
        fn any_body_is_a_subscriber_or_a_400_or_422(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            match parse_json_body::<crate::domain::subscriber::SubscriberSpec>(&body) {
                Ok(_) => {}
                Err(err) => proptest::prop_assert!(matches!(err.status_code().as_u16(), 400 | 422)),
            }
        }
    }
}
