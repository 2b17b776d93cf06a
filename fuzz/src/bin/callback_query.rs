fn main() {
    afl::fuzz!(|data: &[u8]| ringrelay::fuzzing::callback_query(data));
}
