fn main() {
    afl::fuzz!(|data: &[u8]| ringrelay::fuzzing::subscriber_json(data));
}
