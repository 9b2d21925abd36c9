//! XML bodies: a small tolerant scanner that yields text nodes and attribute
//! values with their element path (`/root/a`, `/root/a/@probe`). Entities are
//! left as they are (the detector decodes them); DOCTYPE and entity
//! declarations stay in the raw body for the XXE rules.

/// One XML text node or attribute value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlItem {
    /// `/a/b` for text, `/a/b/@attr` for an attribute value.
    pub path: String,
    /// The text as written (entities not decoded).
    pub text: String,
}

/// Scans an XML document. Never fails: malformed markup yields what could be
/// read. `max_depth` bounds the element path kept.
pub fn scan(doc: &str, max_depth: usize) -> Vec<XmlItem> {
    let b = doc.as_bytes();
    let mut items = Vec::new();
    let mut stack: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'<' {
            let end = memchr::memchr(b'<', &b[i..]).map_or(b.len(), |j| i + j);
            let text = doc[i..end].trim();
            if !text.is_empty() {
                items.push(XmlItem {
                    path: path_of(&stack),
                    text: text.to_owned(),
                });
            }
            i = end;
            continue;
        }
        let rest = &doc[i..];
        if rest.starts_with("<!--") {
            i += rest.find("-->").map_or(rest.len(), |j| j + 3);
        } else if let Some(cdata) = rest.strip_prefix("<![CDATA[") {
            let end = cdata.find("]]>").unwrap_or(cdata.len());
            let text = cdata[..end].trim();
            if !text.is_empty() {
                items.push(XmlItem {
                    path: path_of(&stack),
                    text: text.to_owned(),
                });
            }
            i += 9 + (end + 3).min(cdata.len());
        } else if rest.starts_with("<?") {
            i += rest.find("?>").map_or(rest.len(), |j| j + 2);
        } else if rest.starts_with("<!") {
            i += skip_declaration(rest);
        } else if let Some(close) = rest.strip_prefix("</") {
            let end = close.find('>').unwrap_or(close.len());
            let name = close[..end].trim();
            if let Some(pos) = stack.iter().rposition(|n| *n == name) {
                stack.truncate(pos);
            }
            i += 2 + (end + 1).min(close.len());
        } else {
            i += open_tag(doc, i, &mut stack, &mut items, max_depth);
        }
    }
    items
}

/// Length of `<!DOCTYPE ...>` including an internal subset in brackets.
fn skip_declaration(rest: &str) -> usize {
    let mut depth = 0usize;
    for (j, c) in rest.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '>' if depth == 0 => return j + 1,
            _ => {}
        }
    }
    rest.len()
}

/// Reads a start tag at `start`; returns its length.
fn open_tag<'a>(
    doc: &'a str,
    start: usize,
    stack: &mut Vec<&'a str>,
    items: &mut Vec<XmlItem>,
    max_depth: usize,
) -> usize {
    let b = doc.as_bytes();
    let mut i = start + 1;
    let name_start = i;
    while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' && b[i] != b'/' {
        i += 1;
    }
    let name = &doc[name_start..i];
    let mut attrs: Vec<(&str, &str)> = Vec::new();
    let mut self_closing = false;
    while i < b.len() {
        match b[i] {
            b'>' => {
                i += 1;
                break;
            }
            b'/' => {
                self_closing = true;
                i += 1;
            }
            c if c.is_ascii_whitespace() => i += 1,
            _ => {
                let an = i;
                while i < b.len()
                    && !b[i].is_ascii_whitespace()
                    && !matches!(b[i], b'=' | b'>' | b'/')
                {
                    i += 1;
                }
                let aname = &doc[an..i];
                while i < b.len() && b[i].is_ascii_whitespace() {
                    i += 1;
                }
                if i < b.len() && b[i] == b'=' {
                    i += 1;
                    while i < b.len() && b[i].is_ascii_whitespace() {
                        i += 1;
                    }
                    let (v, next) = attr_value(doc, i);
                    attrs.push((aname, v));
                    i = next;
                } else if an == i {
                    i += 1;
                }
                self_closing = false;
            }
        }
    }
    if !name.is_empty() && stack.len() < max_depth {
        stack.push(name);
        let base = path_of(stack);
        for (an, v) in attrs {
            if !v.is_empty() {
                items.push(XmlItem {
                    path: format!("{base}/@{an}"),
                    text: v.to_owned(),
                });
            }
        }
        if self_closing {
            stack.pop();
        }
    }
    i - start
}

/// A quoted or bare attribute value starting at `i`; returns it and the end.
fn attr_value(doc: &str, i: usize) -> (&str, usize) {
    let b = doc.as_bytes();
    if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
        let q = b[i];
        let end = memchr::memchr(q, &b[i + 1..]).map_or(b.len(), |j| i + 1 + j);
        (&doc[i + 1..end], (end + 1).min(b.len()))
    } else {
        let mut end = i;
        while end < b.len() && !b[end].is_ascii_whitespace() && b[end] != b'>' {
            end += 1;
        }
        (&doc[i..end], end)
    }
}

fn path_of(stack: &[&str]) -> String {
    if stack.is_empty() {
        return "/".to_owned();
    }
    let mut p = String::new();
    for n in stack {
        p.push('/');
        p.extend(n.chars().take(64));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yields_text_and_attributes_with_paths() {
        let items = scan(
            r#"<?xml version="1.0"?><root><a probe="x&lt;y"/><b>hi <![CDATA[raw]]></b></root>"#,
            16,
        );
        let got: Vec<_> = items
            .iter()
            .map(|i| (i.path.as_str(), i.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("/root/a/@probe", "x&lt;y"),
                ("/root/b", "hi"),
                ("/root/b", "raw")
            ]
        );
    }

    #[test]
    fn tolerates_garbage_and_doctype() {
        let items = scan(
            "<!DOCTYPE x [<!ENTITY a SYSTEM \"file:///etc/passwd\">]><x>&a;</x><<<>\"'",
            16,
        );
        assert!(items.iter().any(|i| i.text == "&a;"));
        let _ = scan("<a b='unterminated", 4);
        let _ = scan("<![CDATA[", 4);
    }
}
