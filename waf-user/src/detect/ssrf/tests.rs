//! The SSRF checks' tests.

use super::*;

fn c(s: &str) -> Option<Class> {
    check(s.as_bytes()).map(|(c, _)| c)
}

#[test]
fn classifies_addresses() {
    assert_eq!(
        c("http://169.254.169.254/latest/meta-data/"),
        Some(Class::Metadata)
    );
    assert_eq!(c("http://2852039166/"), Some(Class::Metadata));
    assert_eq!(c("http://0xa9.0xfe.0xa9.0xfe/"), Some(Class::Metadata));
    assert_eq!(c("gopher://0x7f000001"), Some(Class::Loopback));
    assert_eq!(
        c("http://google.com:80 &@google.com:80# @127.88.23.245:22/"),
        Some(Class::Loopback)
    );
    assert_eq!(c("http://[::ffff:127.0.0.1]/"), Some(Class::Loopback));
    assert_eq!(c("http://localhost/"), Some(Class::Loopback));
    assert_eq!(c("https://10.1.2.3/x"), Some(Class::PrivateUrl));
    assert_eq!(c("gateway.docker.internal/"), Some(Class::Internal));
    assert_eq!(
        c("https://example.com/a?b=http://127.0.0.1"),
        Some(Class::Loopback)
    );
    // Parser confusion: the authority ends at `#` for browsers, at the
    // last `@` for others.
    assert_eq!(
        c("http://127.0.0.1:6379#@app.example.test/"),
        Some(Class::Loopback)
    );
    assert_eq!(
        c("http://app.example.test@127.0.0.1:8080/"),
        Some(Class::Loopback)
    );
    // A private address read two ways is the trick, not a setting.
    assert_eq!(c("http://192.168.0.1#@x.example/"), Some(Class::Confused));
    assert_eq!(c("http://evil.example#@10.0.0.5/"), Some(Class::Confused));
    assert_eq!(c("http://10.0.0.5 #a mail me@home"), Some(Class::Private));
    // Names that spell an inside address (wildcard DNS services).
    assert_eq!(
        c("http://169.254.169.254.nip.io/latest/"),
        Some(Class::Metadata)
    );
    assert_eq!(c("http://app-127-0-0-1.sslip.io/"), Some(Class::Loopback));
    assert_eq!(c("http://10.0.0.5.example.net/"), Some(Class::PrivateUrl));
    assert_eq!(c("http://203.0.113.5.nip.io/"), None);
    assert_eq!(c("http://0xa9fea9fe.nip.io/"), Some(Class::Metadata));
    assert_eq!(c("http://deadbeef.example.com/"), None);
    assert_eq!(c("http://v1-2-3.example.com/"), None);
    assert_eq!(c("http://10.010.0.1.nip.io/"), Some(Class::PrivateUrl));
    assert_eq!(c("https://www.example.com/"), None);
    assert_eq!(c("version 1.2.3.4"), None);
    // A public address in two or three decimal parts is a version as much
    // as an address (`HTTP:1.1` reads as `http://1.0.0.1`); its hex,
    // octal or integer forms still hide where they go, and an inside
    // address in any form is what it is.
    assert_eq!(c("http:1.1"), None);
    assert_eq!(c("http://1.1/"), None);
    assert_eq!(c("http://2.0.1/"), None);
    assert_eq!(c("http://0x1.1/"), Some(Class::Obfuscated));
    assert_eq!(c("http://01.1/"), Some(Class::Obfuscated));
    assert_eq!(c("http://16843009/"), Some(Class::Obfuscated));
    assert_eq!(c("http://127.1/"), Some(Class::Loopback));
    assert_eq!(c("http://10.1/"), Some(Class::Obfuscated));
    assert_eq!(c("http:169.254.43518/"), Some(Class::Metadata));
    assert_eq!(c("10.0.0.1"), None);
    assert_eq!(c("127.0.0.1:8081"), None);
    assert_eq!(c("localhost/"), Some(Class::Loopback));
    assert_eq!(c("http:0xa9fea9fe"), Some(Class::Metadata));
    assert_eq!(c("http://0x41414141a9fea9fe/"), Some(Class::Metadata));
    assert_eq!(c("169.254.169.254/latest"), Some(Class::Metadata));
    // Full stops URL parsers map to `.`, in a bare host too.
    for dot in ["\u{3002}", "\u{ff0e}", "\u{ff61}"] {
        let host = ["169", "254", "169", "254"].join(dot);
        assert_eq!(c(&format!("{host}/latest")), Some(Class::Metadata), "{dot}");
        assert_eq!(
            c(&format!("http://{host}/")),
            Some(Class::Metadata),
            "{dot}"
        );
    }
    assert_eq!(c("\u{3002}\u{3002}\u{3002}"), None);
}

proptest::proptest! {
    /// Folding turns each full stop into one `.` and keeps every other
    /// character.
    #[test]
    fn full_stops_fold_to_dots(parts in proptest::collection::vec(
        proptest::prop_oneof![
            proptest::strategy::Just("\u{3002}".to_owned()),
            proptest::strategy::Just("\u{ff0e}".to_owned()),
            proptest::strategy::Just("\u{ff61}".to_owned()),
            "[a-z0-9./:\u{3000}-\u{3010}\u{ff00}-\u{ff70}]{0,4}",
        ],
        0..12,
    )) {
        let text = parts.concat();
        let want = text.replace(['\u{3002}', '\u{ff0e}', '\u{ff61}'], ".");
        proptest::prop_assert_eq!(fold_full_stops(text.as_bytes()).into_owned(), want.into_bytes());
    }
}

#[test]
fn a_private_address_is_a_fetch_target_in_a_url_alone() {
    for v in [
        "http://10.0.0.5/admin",
        "https://192.168.1.1:8443/",
        "http://172.16.0.10:8080/manager/html",
        "  gopher://10.1.2.3:6379/_info  ",
        "http:192.168.0.1/x",
        "http://[fd12:3456::1]/",
        "https://example.com/proxy?u=http://10.0.0.5/",
    ] {
        assert_eq!(c(v), Some(Class::PrivateUrl), "{v:?}");
        assert_eq!(Class::PrivateUrl.severity(), Severity::Critical);
    }
    // In a sentence, or an address alone, it is text about a network.
    for v in [
        "see http://192.168.1.1/ for the router",
        "the printer is at http://10.0.0.7 on the office LAN",
        "http://10.0.0.5 #a mail me@home",
    ] {
        assert_eq!(c(v), Some(Class::Private), "{v:?}");
    }
    assert_eq!(c("192.168.1.10"), None);
    assert_eq!(c("10.0.0.1 is our office gateway"), None);
    assert_eq!(c("https://www.example.com/a?ip=10.0.0.5"), None);
}

#[test]
fn bare_names_that_point_inside_and_ports_parsers_disagree_on() {
    // Alone, without a path: names that exist to point inside.
    assert_eq!(c("127.0.0.1.nip.io"), Some(Class::Loopback));
    assert_eq!(c("app-127-0-0-1.sslip.io:8080"), Some(Class::Loopback));
    assert_eq!(c("169.254.169.254.nip.io"), Some(Class::Metadata));
    assert_eq!(c("7f000001.nip.io"), Some(Class::Loopback));
    assert_eq!(c("localtest.me"), Some(Class::Loopback));
    assert_eq!(c("a.b.lvh.me"), Some(Class::Loopback));
    // Addresses and `localhost` alone stay settings, public names too.
    assert_eq!(c("127.0.0.1"), None);
    assert_eq!(c("localhost"), None);
    assert_eq!(c("localhost:3000"), None);
    assert_eq!(c("[::1]:8080"), None);
    // With a path they are probes, bracketed IPv6 too; Azure's wire
    // server hands out a machine's certificates and settings.
    assert_eq!(c("[::1]/admin"), Some(Class::Loopback));
    assert_eq!(c("[::1]:8080/admin"), Some(Class::Loopback));
    assert_eq!(c("168.63.129.16/machine"), Some(Class::Metadata));
    assert_eq!(c("http://168.63.129.16/machine"), Some(Class::Metadata));
    assert_eq!(c("10.0.0.5.sslip.io"), None, "private: needs a URL");
    assert_eq!(c("203.0.113.9.nip.io"), None);
    assert_eq!(c("www.example.com"), None);
    assert_eq!(c("release-1.2.3.4.tar.gz"), None);
    // A colon after the port: the host before it is read.
    assert_eq!(
        c("http://127.1.1.1:80:\\@@127.2.2.2:80/"),
        Some(Class::Loopback)
    );
    // A backslash before the userinfo: urllib reads the last host.
    assert_eq!(c("http://e.com\\@127.0.0.1:6379/"), Some(Class::Loopback));
    assert_eq!(c("http://e.com\\@example.org/"), None);
    assert_eq!(c("http://127.0.0.1:80:/"), Some(Class::Loopback));
    assert_eq!(c("http://127.0.0.1::/"), Some(Class::Loopback));
    assert_eq!(c("http://example.com:80:/"), None);
    assert_eq!(c("http://[::1]:80/"), Some(Class::Loopback));
}

#[test]
fn reads_hosts_escaped_character_by_character() {
    assert_eq!(c(r"http://\l\o\c\a\l\h\o\s\t/"), Some(Class::Loopback));
    assert_eq!(
        c(r"http://\\l\\o\\c\\a\\l\\h\\o\\s\\t/"),
        Some(Class::Loopback)
    );
    // Escaping a public host is the obfuscation alone.
    assert_eq!(
        c(r"http://\\g\\o\\o\\g\\l\\e.\\c\\o\\m/"),
        Some(Class::Obfuscated)
    );
    assert_eq!(c(r"https://\e\v\i\l.example/x"), Some(Class::Obfuscated));
    // Backslashes in a path, a UNC share and a regex are no escaped host.
    for v in [
        r"https://example.com/a\b\c\d",
        r"file://\\server\share\docs",
        r"see https://example.com and C:\a\b\c",
        r"^https?://[\w.-]+\.example\.com/",
    ] {
        assert_eq!(c(v), None, "{v}");
    }
}
