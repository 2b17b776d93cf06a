//! A credential that holds two values while it is being rotated.
//!
//! Providers let an account have a second auth token (or signing key) for a
//! while, and start signing with it before the operator has changed our
//! environment. A variable such as `TWILIO_AUTH_TOKEN` therefore takes the
//! current value and, during a rotation, the next one after a comma; a
//! request signed with either verifies. Outgoing signatures
//! (`WEBHOOK_SECRET`) are made with both, so receivers switch at their own
//! pace.

/// The current value of a credential and, while it rotates, the next.
#[derive(Clone)]
pub struct Rotating<K> {
    current: K,
    next: Option<K>,
}

/// Which value of a [`Rotating`] credential was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    Current,
    Next,
}

impl Slot {
    /// Its label in metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Next => "next",
        }
    }
}

impl<K> Rotating<K> {
    /// One value, not rotating.
    pub fn single(current: K) -> Self {
        Self {
            current,
            next: None,
        }
    }

    /// `current` or `current,next`, each value read by `parse_one`; the
    /// problem names which value is wrong.
    pub fn parse(raw: &str, parse_one: impl Fn(&str) -> Result<K, String>) -> Result<Self, String> {
        let values: Vec<&str> = raw.split(',').map(str::trim).collect();
        if values.iter().any(|v| v.is_empty()) {
            return Err("has an empty value (expected one value, or two separated by a comma: the current and the next)".into());
        }
        match values.as_slice() {
            [current] => Ok(Self::single(parse_one(current)?)),
            [current, next] => Ok(Self {
                current: parse_one(current).map_err(|p| format!("the first value {p}"))?,
                next: Some(parse_one(next).map_err(|p| format!("the second value {p}"))?),
            }),
            _ => Err(format!(
                "takes at most two values separated by a comma (the current and the next), got {}",
                values.len()
            )),
        }
    }

    pub fn current(&self) -> &K {
        &self.current
    }

    /// Every value with its slot, the current first.
    pub fn values(&self) -> impl Iterator<Item = (Slot, &K)> {
        std::iter::once((Slot::Current, &self.current))
            .chain(self.next.iter().map(|next| (Slot::Next, next)))
    }

    /// Runs `check` with each value, the current first, and says which one
    /// passed. When none does, the current value's error is returned: it
    /// describes the request as well as the other's would.
    pub fn verify<T, E>(&self, check: impl Fn(&K) -> Result<T, E>) -> Result<(T, Slot), E> {
        let first = match check(&self.current) {
            Ok(value) => return Ok((value, Slot::Current)),
            Err(err) => err,
        };
        match &self.next {
            Some(next) => check(next)
                .map(|value| (value, Slot::Next))
                .map_err(|_| first),
            None => Err(first),
        }
    }

    /// The same credential with each value transformed.
    pub fn map<L>(self, f: impl Fn(K) -> L) -> Rotating<L> {
        Rotating {
            current: f(self.current),
            next: self.next.map(f),
        }
    }
}

/// Never prints a value: credentials are secrets.
impl<K> std::fmt::Debug for Rotating<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let values = if self.next.is_some() { 2 } else { 1 };
        write!(f, "Rotating([REDACTED] × {values})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(value: &str) -> Result<u32, String> {
        value
            .parse()
            .map_err(|_| format!("is not a number: {value:?}"))
    }

    #[test]
    fn one_value_is_the_current_and_only_one() {
        let key = Rotating::parse("7", digits).unwrap();
        assert_eq!(*key.current(), 7);
        assert_eq!(key.values().collect::<Vec<_>>(), [(Slot::Current, &7)]);
    }

    #[test]
    fn two_values_are_the_current_then_the_next() {
        let key = Rotating::parse(" 7 , 8 ", digits).unwrap();
        assert_eq!(
            key.values().collect::<Vec<_>>(),
            [(Slot::Current, &7), (Slot::Next, &8)]
        );
    }

    #[test]
    fn bad_values_are_named_by_position() {
        let cases = [
            ("x", "is not a number"),
            ("7,x", "the second value is not a number"),
            ("x,7", "the first value is not a number"),
            ("7,8,9", "at most two values"),
            ("7,", "has an empty value"),
            (",", "has an empty value"),
        ];
        for (raw, expected) in cases {
            let problem = Rotating::parse(raw, digits).unwrap_err();
            assert!(problem.contains(expected), "{raw:?}: {problem}");
        }
    }

    #[test]
    fn verify_says_which_value_passed_and_prefers_the_current() {
        let key = Rotating::parse("7,8", digits).unwrap();
        let equals = |wanted: u32| move |k: &u32| if *k == wanted { Ok(()) } else { Err(*k) };
        assert_eq!(key.verify(equals(7)), Ok(((), Slot::Current)));
        assert_eq!(key.verify(equals(8)), Ok(((), Slot::Next)));
        // Neither: the current value's error.
        assert_eq!(key.verify(equals(9)), Err(7));
        assert_eq!(Rotating::single(7).verify(equals(8)), Err(7));
    }

    #[test]
    fn debug_never_shows_a_value() {
        let key =
            Rotating::parse("secret-one,secret-two", |v| Ok::<_, String>(v.to_owned())).unwrap();
        let printed = format!("{key:?}");
        assert!(!printed.contains("secret"), "{printed}");
        assert!(printed.contains('2'), "{printed}");
    }
}
