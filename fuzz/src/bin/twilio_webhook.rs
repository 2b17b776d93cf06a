fn main() {
    afl::fuzz!(|data: &[u8]| ringrelay::fuzzing::twilio_webhook(data));
}
