//! What the simulator's test binaries share.

/// The text of `fixtures/scenarios/<name>.toml`.
pub fn fixture(name: &str) -> String {
    let file = format!(
        "{}/../fixtures/scenarios/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"))
}
