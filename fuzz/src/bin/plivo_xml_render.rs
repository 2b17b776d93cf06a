fn main() {
    afl::fuzz!(|data: &[u8]| ringrelay::fuzzing::plivo_xml_render(data));
}
