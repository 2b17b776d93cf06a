//! What the providers' unit tests build their inputs from.

use super::{DialTarget, Params};
use crate::domain::phone::{PhoneNumber, Region};
use crate::domain::subscriber::Target;

/// A form of these pairs, in order.
pub fn params(pairs: &[(&str, &str)]) -> Params {
    Params::from_pairs(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

pub fn number(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s, Region::default()).unwrap()
}

/// A phone to dial, without a whisper.
pub fn phone(s: &str) -> DialTarget {
    DialTarget {
        target: Target::Phone(number(s)),
        pickup_url: None,
        screened: false,
    }
}
