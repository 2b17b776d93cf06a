//! The spoken texts (`templates/`): compiled-in defaults, each overridable by
//! a file of the same name in `TEMPLATES_DIR`.

use std::path::Path;

use anyhow::Context as _;

#[derive(Debug, Clone)]
pub struct Templates {
    pub voicemail_greeting: String,
    pub unknown_call: String,
    pub screening_prompt: String,
}

const DEFAULTS: [(&str, &str); 3] = [
    (
        "voicemail_greeting.txt",
        include_str!("../templates/voicemail_greeting.txt"),
    ),
    (
        "unknown_call.txt",
        include_str!("../templates/unknown_call.txt"),
    ),
    (
        "screening_prompt.txt",
        include_str!("../templates/screening_prompt.txt"),
    ),
];

impl Default for Templates {
    fn default() -> Self {
        let [greeting, unknown, screening] = DEFAULTS.map(|(_, text)| text.trim().to_owned());
        Self {
            voicemail_greeting: greeting,
            unknown_call: unknown,
            screening_prompt: screening,
        }
    }
}

impl Templates {
    /// The defaults, with each file present in `dir` taking their place.
    pub fn load(dir: Option<&Path>) -> anyhow::Result<Self> {
        let Some(dir) = dir else {
            return Ok(Self::default());
        };
        let read = |name: &str, default: &str| -> anyhow::Result<String> {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
                Ok(_) => anyhow::bail!("{} is empty", path.display()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(default.to_owned()),
                Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
            }
        };
        let defaults = Self::default();
        Ok(Self {
            voicemail_greeting: read("voicemail_greeting.txt", &defaults.voicemail_greeting)?,
            unknown_call: read("unknown_call.txt", &defaults.unknown_call)?,
            screening_prompt: read("screening_prompt.txt", &defaults.screening_prompt)?,
        })
    }
}

/// A number spoken digit by digit ("+1 202…" → "1 2 0 2 …"), as text-to-speech
/// would otherwise read it as one large number.
pub fn spoken_digits(number: &str) -> String {
    let mut out = String::with_capacity(number.len() * 2);
    for c in number.chars().filter(char::is_ascii_digit) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_come_from_the_templates_folder() {
        let t = Templates::default();
        assert!(t.voicemail_greeting.contains("leave a message"));
        assert!(t.screening_prompt.contains("{caller}"));
    }

    #[test]
    fn a_file_in_the_override_folder_replaces_only_its_text() {
        let dir = std::env::temp_dir().join(format!("ringrelay-templates-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("unknown_call.txt"), "  Nobody here.\n").unwrap();
        let t = Templates::load(Some(&dir)).unwrap();
        assert_eq!(t.unknown_call, "Nobody here.");
        assert_eq!(
            t.voicemail_greeting,
            Templates::default().voicemail_greeting
        );
        std::fs::write(dir.join("unknown_call.txt"), "\n").unwrap();
        assert!(
            Templates::load(Some(&dir)).is_err(),
            "an empty override is a mistake"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn numbers_are_spoken_digit_by_digit() {
        assert_eq!(spoken_digits("+12025"), "1 2 0 2 5");
    }
}
