//! What the providers' unit tests build their inputs from.

use super::{Params, Provider, ProviderVars};
use crate::domain::phone::{PhoneNumber, Region};
use crate::domain::subscriber::Target;
use crate::flow::model::DialTarget;

/// A form of these pairs, in order.
pub(crate) fn params(pairs: &[(&str, &str)]) -> Params {
    Params::from_pairs(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

pub(crate) fn number(s: &str) -> PhoneNumber {
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

/// `P` configured with a credential of the right shape (a token, or for
/// Telnyx a public key), for tests that render markup.
pub(crate) fn configured<P: Provider>() -> P::Config {
    let mut vars = ProviderVars::default();
    let credential = if P::NAME == "telnyx" {
        // Any valid Ed25519 public key.
        "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
    } else {
        "12345"
    };
    vars.insert(P::VARIABLES[0], credential.into());
    P::configure(&vars)
        .expect("the credential has its shape")
        .expect("the credential is set")
}
