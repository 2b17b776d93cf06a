fn main() {
    afl::fuzz!(|data: &[u8]| ringrelay::fuzzing::plivo_webhook(data));
}
