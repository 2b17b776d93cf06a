fn main() {
    ringrelay::fuzzing::warm_up();
    afl::fuzz!(|data: &[u8]| ringrelay::fuzzing::telnyx_webhook(data));
}
