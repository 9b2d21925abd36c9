//! XML bodies: a small tolerant scanner that yields text nodes and attribute
//! values with their element path (`/root/a`, `/root/a/@probe`). Entities are
//! left as they are (the detector decodes them); DOCTYPE and entity
//! declarations stay in the raw body for the XXE rules.

use super::paths::{Arena, NodeId, PathTree, ROOT};

/// One XML text node or attribute value.
#[derive(Debug, Clone, Copy)]
pub struct XmlItem<'a> {
    /// The text as written (entities not decoded).
    pub text: &'a str,
    node: NodeId,
    paths: &'a PathTree,
}

impl XmlItem<'_> {
    /// `/a/b` for text, `/a/b/@attr` for an attribute value.
    pub fn path(&self) -> String {
        let mut p = String::new();
        self.paths.write(self.node, &mut p);
        if p.is_empty() {
            p.push('/');
        }
        p
    }
}

/// Where an item's text is in the arena, and its path node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XmlEntry {
    start: usize,
    end: usize,
    node: NodeId,
}

/// The text nodes and attribute values of a document, in document order:
/// their texts one after another in one string, their paths a tree
/// (`paths.rs`), so memory grows linearly with the document.
pub type XmlItems = Arena<XmlEntry>;

impl Arena<XmlEntry> {
    /// The items in document order.
    pub fn iter(&self) -> impl Iterator<Item = XmlItem<'_>> {
        self.items.iter().map(|i| XmlItem {
            text: &self.texts[i.start..i.end],
            node: i.node,
            paths: &self.paths,
        })
    }

    fn push(&mut self, text: &str, node: NodeId) {
        let (start, end) = self.push_text(text);
        self.items.push(XmlEntry { start, end, node });
    }
}

/// Scans an XML document. Never fails: malformed markup yields what could be
/// read. `max_depth` bounds the element path kept. The text of an element
/// is read as a parser hands it on: runs split by comments, processing
/// instructions and CDATA sections are one text (`un<!---->ion` is
/// `union`).
pub fn scan(doc: &str, max_depth: usize) -> XmlItems {
    let b = doc.as_bytes();
    let mut items = XmlItems::default();
    // Open elements: their names and path nodes.
    let mut stack: Vec<(&str, NodeId)> = Vec::new();
    // The text read since the last tag.
    let mut text = String::new();
    let flush = |text: &mut String, items: &mut XmlItems, stack: &[(&str, NodeId)]| {
        let t = text.trim();
        if !t.is_empty() {
            items.push(t, top(stack));
        }
        text.clear();
    };
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'<' {
            let end = memchr::memchr(b'<', &b[i..]).map_or(b.len(), |j| i + j);
            text.push_str(&doc[i..end]);
            i = end;
            continue;
        }
        let rest = &doc[i..];
        if rest.starts_with("<!--") {
            i += rest.find("-->").map_or(rest.len(), |j| j + 3);
        } else if let Some(cdata) = rest.strip_prefix("<![CDATA[") {
            let end = cdata.find("]]>").unwrap_or(cdata.len());
            text.push_str(&cdata[..end]);
            i += 9 + (end + 3).min(cdata.len());
        } else if rest.starts_with("<?") {
            i += rest.find("?>").map_or(rest.len(), |j| j + 2);
        } else if rest.starts_with("<!") {
            flush(&mut text, &mut items, &stack);
            i += skip_declaration(rest);
        } else if let Some(close) = rest.strip_prefix("</") {
            flush(&mut text, &mut items, &stack);
            let end = close.find('>').unwrap_or(close.len());
            let name = close[..end].trim();
            if let Some(pos) = stack.iter().rposition(|(n, _)| *n == name) {
                stack.truncate(pos);
            }
            i += 2 + (end + 1).min(close.len());
        } else {
            flush(&mut text, &mut items, &stack);
            i += open_tag(doc, i, &mut stack, &mut items, max_depth);
        }
    }
    flush(&mut text, &mut items, &stack);
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
    stack: &mut Vec<(&'a str, NodeId)>,
    items: &mut XmlItems,
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
        // The name's first 64 characters.
        let shown = name
            .char_indices()
            .nth(64)
            .map_or(name, |(k, _)| &name[..k]);
        let node = items.paths.child(top(stack), &["/", shown]);
        stack.push((name, node));
        for (an, v) in attrs {
            if !v.is_empty() {
                let attr = items.paths.child(node, &["/@", an]);
                items.push(v, attr);
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

/// The path node of the innermost open element (the root when none).
fn top(stack: &[(&str, NodeId)]) -> NodeId {
    stack.last().map_or(ROOT, |&(_, n)| n)
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
        let got: Vec<_> = items.iter().map(|i| (i.path(), i.text)).collect();
        assert_eq!(
            got,
            [
                ("/root/a/@probe".to_owned(), "x&lt;y"),
                ("/root/b".to_owned(), "hi raw"),
            ]
        );
        // Comments, processing instructions and CDATA sections inside a
        // text do not split it.
        let split = scan(
            "<q>1' un<!---->ion sel<?x?>ect pass<![CDATA[word]]> from users</q>",
            4,
        );
        let got: Vec<_> = split.iter().map(|i| i.text).collect();
        assert_eq!(got, ["1' union select password from users"]);
        let top = scan("loose <a>x</a>", 4);
        let got: Vec<_> = top.iter().map(|i| (i.path(), i.text)).collect();
        assert_eq!(got, [("/".to_owned(), "loose"), ("/a".to_owned(), "x")]);
    }

    /// Paths are not written out per item: texts and attributes 31
    /// elements of 64 bytes deep (each path about 2 kB) keep memory in
    /// proportion to the document.
    #[test]
    fn memory_grows_with_the_document_not_with_its_depth() {
        let name = "e".repeat(64);
        let mut doc = format!("<{name}>").repeat(31);
        doc.push_str(&"x<b/>".repeat(10_000));
        doc.push_str("<c");
        doc.push_str(&" a=1".repeat(10_000));
        doc.push_str("/>");
        let items = scan(&doc, 32);
        assert_eq!(items.len(), 20_000);
        let deep = format!("/{name}").repeat(31);
        let paths: Vec<String> = items.iter().map(|i| i.path()).collect();
        assert_eq!(paths[0], deep);
        assert_eq!(paths[19_999], format!("{deep}/c/@a"));
        let written_out: usize = paths.iter().map(String::len).sum();
        assert!(written_out > 200 * doc.len(), "{written_out}");
        assert!(
            items.heap_bytes() < 32 * doc.len(),
            "{} for {} bytes",
            items.heap_bytes(),
            doc.len()
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
