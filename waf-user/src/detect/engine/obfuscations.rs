//! Obfuscated and smuggled forms of attacks, through the whole engine at
//! paranoia 1: JavaScript escapes of letters, node-serialize objects in
//! base64, quoted cookie values that swallow cookies, hosts escaped
//! character by character, PHP's `data:` wrapper and ORM filter keys;
//! each beside the benign look-alikes that must pass.

use super::lookalikes::request;
use crate::detect::{Action, Verdict};

fn get(target: &str) -> Verdict {
    request("GET", target, &[], "")
}

fn with_cookie(cookie: &str) -> Verdict {
    request("GET", "/account", &[("Cookie", cookie)], "")
}

fn json(body: &str) -> Verdict {
    request(
        "POST",
        "/api/items",
        &[("Content-Type", "application/json")],
        body,
    )
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn assert_passes(v: &Verdict, what: &str) {
    assert_eq!(v.action, Action::Pass, "{what}: {:?}", v.attacks);
}

fn assert_blocks_with(v: &Verdict, rule: &str, what: &str) {
    assert_eq!(v.action, Action::Block, "{what}: {:?}", v.attacks);
    assert!(
        v.attacks.iter().any(|f| f.rule == rule),
        "{what}: {:?}",
        v.attacks
    );
}

#[test]
fn letters_written_as_javascript_escapes_block() {
    for q in [
        "/s?q=%5Cu0061lert",
        "/s?q=%22in%20\\u0076\\u0061l\\u0075e\\u004F\\u0066%3d",
        "/s?q=c\\u006fnsole.info",
        "/s?q=\\u{64}ocument.domain",
    ] {
        assert_blocks_with(&get(q), "protocol-js-escaped-letter", q);
    }
    for q in [
        "/s?q=caf\\u00e9%20au%20lait",
        "/s?q=\\u4e2d\\u6587",
        "/s?q=C:\\users\\docs\\notes.txt",
        "/s?q=escape%20%3C%20as%20\\u003c%20in%20JSON",
        "/s?q=the%20letter%20\\u0041%20alone",
    ] {
        assert_passes(&get(q), q);
    }
}

#[test]
fn node_serialize_objects_in_base64_block() {
    for obj in [
        r#"{"username":"_$$ND_FUNC$$_function(){require('child_process').exec('id')}()"}"#,
        "_$$ND_FUNC$$_function()\n",
        r#"_$$\u004e\u0044_FUNC$$_\u0066unction()"#,
    ] {
        let cookie = format!("profile={}", b64(obj));
        assert_blocks_with(&with_cookie(&cookie), "node-serialize-encoded", obj);
    }
    for obj in [
        r#"{"username":"alice","country":"FR","admin":false}"#,
        r#"{"cart":[{"sku":"A-1","qty":2}],"total":"$$ 12"}"#,
    ] {
        let cookie = format!("profile={}", b64(obj));
        assert_passes(&with_cookie(&cookie), obj);
    }
}

#[test]
fn quoted_cookie_values_that_swallow_cookies_block() {
    for cookie in [
        r#"$Version=1; session="deadbeef; PHPSESSID=secret; dummy=qaz""#,
        r#"lang="en; sid=abc123; x=y""#,
    ] {
        assert_blocks_with(&with_cookie(cookie), "protocol-cookie-quoted-span", cookie);
    }
    for cookie in [
        r#"a="quoted"; b="also quoted""#,
        r#"$Version="1"; name="value"; $Path="/""#,
        r#"note="a; b"; c=1"#,
        "sid=abc123; theme=dark",
    ] {
        assert_passes(&with_cookie(cookie), cookie);
    }
}

#[test]
fn hosts_escaped_character_by_character_block() {
    for q in [
        "/fetch?url=http://\\\\l\\\\o\\\\c\\\\a\\\\l\\\\h\\\\o\\\\s\\\\t/",
        "/fetch?url=http://\\\\g\\\\o\\\\o\\\\g\\\\l\\\\e.\\\\c\\\\o\\\\m/",
        "/fetch?url=https://\\e\\v\\i\\l.example/x",
    ] {
        let v = get(q);
        assert_eq!(v.action, Action::Block, "{q}: {:?}", v.attacks);
    }
    for q in [
        "/fetch?url=https://example.com/a\\b\\c",
        "/s?q=https://example.com%20and%20C:\\a\\b\\c",
    ] {
        assert_passes(&get(q), q);
    }
}

#[test]
fn php_data_wrapper_uris_block() {
    for q in [
        "/page?file=data:text/plain;base64,SSBsb3ZlIFBIUAo=",
        "/page?file=data:text/plain",
        "/page?file=data:text/plain,hello",
        "/page?file=data:application/x-httpd-php;base64,SGVsbG8=",
    ] {
        assert_blocks_with(&get(q), "rfi-data-text-uri", q);
    }
    assert_blocks_with(
        &json(r#"{ "data:text/plain":"foo" }"#),
        "rfi-data-text-uri",
        "key",
    );
    for q in [
        "/upload?avatar=data:image/png;base64,iVBORw0KGgo=",
        "/s?q=what%20is%20a%20data:text/plain%20URI",
        "/s?q=data:%20the%20report",
    ] {
        assert_passes(&get(q), q);
    }
    // Documents carry files as data URIs.
    assert_passes(
        &json(r#"{"attachment":"data:text/plain;base64,SGVsbG8gd29ybGQ="}"#),
        "attachment",
    );
}

#[test]
fn orm_filter_keys_with_underscored_fields_block() {
    for q in [
        "/api/users?created_by__departments__employees__user__username__startswith=p",
        "/api/users?user__metadata__has_keys=is_staff",
        "/api/users?owner__reset_token__regex=%5Ea",
    ] {
        assert_blocks_with(&get(q), "nosql-orm-lookup", q);
    }
    assert_blocks_with(
        &json(r#"{"created_by__departments__employees__user__username__startswith":"p"}"#),
        "nosql-orm-lookup",
        "json key",
    );
    for q in [
        "/api/products?price__gte=10",
        "/api/books?author__name__icontains=smith",
        "/api/events?created_at__date__gte=2024-01-01",
        "/api/items?sort_by=created_at&page_size=20",
    ] {
        assert_passes(&get(q), q);
    }
}
