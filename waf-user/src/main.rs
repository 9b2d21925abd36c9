fn main() {
    match waf_user::dataplane::Dataplane::load(&Default::default()) {
        Ok(_) => println!("ok"),
        Err(e) => {
            println!("{e}");
            let mut s: &dyn std::error::Error = &e;
            while let Some(src) = s.source() { println!("caused by: {src}"); s = src; }
        }
    }
}
