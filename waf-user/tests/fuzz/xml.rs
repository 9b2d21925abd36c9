//! Target `xml`: the XML scanner. Any text: no panic, paths start with `/`.
//! Generated documents: every text node and attribute value comes back with
//! its element path.

use proptest::prelude::*;
use waf_user::http::xml;

use crate::{check, support};

#[derive(Debug, Clone)]
struct Element {
    name: String,
    attr: Option<(String, String)>,
    text: String,
    children: Vec<Element>,
}

fn element() -> impl Strategy<Value = Element> {
    let leaf = (
        "[a-z]{1,6}",
        prop::option::of(("[a-z]{1,5}", "[a-z0-9 ]{1,8}")),
        "[a-z0-9]{0,8}",
    )
        .prop_map(|(name, attr, text)| Element {
            name,
            attr,
            text,
            children: Vec::new(),
        });
    leaf.prop_recursive(4, 24, 4, |inner| {
        (
            "[a-z]{1,6}",
            prop::option::of(("[a-z]{1,5}", "[a-z0-9 ]{1,8}")),
            "[a-z0-9]{0,8}",
            prop::collection::vec(inner, 0..4),
        )
            .prop_map(|(name, attr, text, children)| Element {
                name,
                attr,
                text,
                children,
            })
    })
}

fn write(e: &Element, out: &mut String, path: &str, want: &mut Vec<(String, String)>) {
    let path = format!("{path}/{}", e.name);
    out.push('<');
    out.push_str(&e.name);
    if let Some((k, v)) = &e.attr {
        out.push_str(&format!(" {k}=\"{v}\""));
        if !v.is_empty() {
            want.push((format!("{path}/@{k}"), v.clone()));
        }
    }
    out.push('>');
    out.push_str(&e.text);
    if !e.text.is_empty() {
        want.push((path.clone(), e.text.clone()));
    }
    for c in &e.children {
        write(c, out, &path, want);
    }
    out.push_str(&format!("</{}>", e.name));
}

#[test]
fn fuzz_xml() {
    support::run("xml", (element(), ".{0,200}"), |(root, noise)| {
        let mut doc = String::from("<?xml version=\"1.0\"?>");
        let mut want = Vec::new();
        write(&root, &mut doc, "", &mut want);
        let got: Vec<(String, String)> = xml::scan(&doc, 64)
            .iter()
            .map(|i| (i.path(), i.text.to_owned()))
            .collect();
        check!(got == want, "scan {got:?} != {want:?} for {doc}");
        for item in xml::scan(&noise, 8).iter() {
            let path = item.path();
            check!(path.starts_with('/'), "path {path:?}");
        }
        Ok(())
    });
}
