//! Plivo: not simulated yet.

pub(super) fn sign(_: &[u8], _: &str, _: &[(String, String)]) -> Vec<(&'static str, String)> {
    Vec::new()
}

pub(super) async fn run(_: &mut super::Call<'_>, _: &super::Forwarded) -> Result<(), super::Error> {
    Err(anyhow::anyhow!("the Plivo CPaaS is not simulated yet").into())
}
