fn main() {
    ringrelay_server::fuzzing::warm_up();
    afl::fuzz!(|data: &[u8]| ringrelay_server::fuzzing::plivo_webhook(data));
}
