fn main() {
    afl::fuzz!(|data: &[u8]| ringrelay::fuzzing::twiml_render(data));
}
