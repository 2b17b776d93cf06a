fn main() {
    ringrelay::fuzzing::warm_up();
    afl::fuzz!(|data: &[u8]| ringrelay::fuzzing::callback_query(data));
}
