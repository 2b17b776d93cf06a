//! What the domain says when input breaks one of its rules: the field, by
//! its JSON path, and the rule. The HTTP edge shows it as a 422.

/// A field of the body that breaks a rule; `field` is its JSON path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
