//! Plivo: `X-Plivo-Signature-V3` (and V2) and Plivo XML.

pub mod signature;
pub mod xml;
