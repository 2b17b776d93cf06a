//! The carrier: forwards the call the phone rejected (or could not take)
//! to the subscriber's forwarding number, after a delay, with or without
//! `ForwardedFrom`.

use std::time::Duration;

use super::caller::Caller;
use super::cpaas::Forwarded;
use super::timeline::Timeline;

const PARTY: &str = "carrier";

pub struct Carrier {
    pub delay: Duration,
    pub sends_forwarded_from: bool,
}

impl Carrier {
    /// The forwarded call, unless the caller hangs up before it goes out.
    pub fn forward(
        &self,
        caller: &Caller,
        subscriber: &str,
        forwarding_number: &str,
        timeline: &Timeline,
    ) -> Option<Forwarded> {
        let at = timeline.now_ms() + u64::try_from(self.delay.as_millis()).unwrap_or(u64::MAX);
        if let Some(gone) = caller.hangs_up_before(at) {
            timeline.advance_to(gone);
            timeline.log("caller", "hangs up before the call is forwarded");
            return None;
        }
        timeline.advance_to(at);
        let forwarded_from = self.sends_forwarded_from.then(|| subscriber.to_owned());
        timeline.log(
            PARTY,
            format!(
                "forwards the call to {forwarding_number}{}",
                if forwarded_from.is_some() {
                    ", with ForwardedFrom"
                } else {
                    ", without ForwardedFrom"
                }
            ),
        );
        Some(Forwarded {
            from: caller.number.clone(),
            to: forwarding_number.to_owned(),
            forwarded_from,
            verification: caller.verification,
        })
    }
}
