//! Locations in a JSON or XML document, kept as a tree of path segments
//! and written out only when asked for (a finding's location).
//!
//! Writing each item's whole path into a string of its own costs memory
//! in the product of the items and the depth: a 1 MB JSON document of
//! empty strings 32 members deep made 673 MB of paths. Here each member,
//! element or attribute adds one node of a few words: memory grows
//! linearly with the document.

/// A node of a [`PathTree`].
pub type NodeId = u32;

/// The root: the empty path.
pub const ROOT: NodeId = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seg {
    /// Bytes `start..end` of the tree's segment text.
    Text(usize, usize),
    /// An array element: `[index]`.
    Index(u32),
}

/// Path segments, each below its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTree {
    nodes: Vec<(NodeId, Seg)>,
    segs: String,
}

impl Default for PathTree {
    fn default() -> Self {
        PathTree {
            nodes: vec![(ROOT, Seg::Text(0, 0))],
            segs: String::new(),
        }
    }
}

impl PathTree {
    /// A node below `parent` for the segment the `parts` make together
    /// (written as they are: `.name`, `["a b"]`, `/` and a name, `/@` and
    /// an attribute), copied straight into the tree. At the bound of
    /// `NodeId` (a document of over four billion members) it is `parent`
    /// itself.
    pub fn child(&mut self, parent: NodeId, parts: &[&str]) -> NodeId {
        let start = self.segs.len();
        let Some(id) = self.next_id() else {
            return parent;
        };
        for part in parts {
            self.segs.push_str(part);
        }
        self.nodes.push((parent, Seg::Text(start, self.segs.len())));
        id
    }

    /// A node for element `index` of the array at `parent`.
    pub fn element(&mut self, parent: NodeId, index: u32) -> NodeId {
        let Some(id) = self.next_id() else {
            return parent;
        };
        self.nodes.push((parent, Seg::Index(index)));
        id
    }

    fn next_id(&self) -> Option<NodeId> {
        NodeId::try_from(self.nodes.len()).ok()
    }

    /// Appends the segments from the root down to `node` to `out`.
    pub fn write(&self, node: NodeId, out: &mut String) {
        let mut chain = Vec::new();
        let mut at = node;
        // Parents are always created before their children: ids fall
        // towards the root, which ends the walk.
        while at != ROOT {
            let Some(&(parent, seg)) = self.nodes.get(at as usize) else {
                break;
            };
            chain.push(seg);
            at = parent;
        }
        for seg in chain.into_iter().rev() {
            match seg {
                Seg::Text(s, e) => out.push_str(&self.segs[s..e]),
                Seg::Index(i) => {
                    use std::fmt::Write as _;
                    // Writing to a String cannot fail.
                    let _ = write!(out, "[{i}]");
                }
            }
        }
    }

    /// Nodes held (the root included).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<(NodeId, Seg)>() + self.segs.capacity()
    }

    /// Whether only the root is held.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() == 1
    }
}

/// The items of a document: their texts one after another in one string,
/// an entry of type `E` each (where its text is, and where it is), and
/// the path tree the entries point into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arena<E> {
    pub(super) texts: String,
    pub(super) items: Vec<E>,
    pub(super) paths: PathTree,
}

impl<E> Default for Arena<E> {
    fn default() -> Self {
        Arena {
            texts: String::new(),
            items: Vec::new(),
            paths: PathTree::default(),
        }
    }
}

impl<E> Arena<E> {
    /// How many items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.texts.capacity()
            + self.items.capacity() * std::mem::size_of::<E>()
            + self.paths.heap_bytes()
    }

    /// Appends a text; the bytes it takes in `texts`.
    pub(super) fn push_text(&mut self, text: &str) -> (usize, usize) {
        let start = self.texts.len();
        self.texts.push_str(text);
        (start, self.texts.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(t: &PathTree, n: NodeId) -> String {
        let mut s = String::from("$");
        t.write(n, &mut s);
        s
    }

    #[test]
    fn writes_segments_from_the_root_down() {
        let mut t = PathTree::default();
        assert!(t.is_empty());
        let user = t.child(ROOT, &[".user"]);
        let tags = t.child(user, &[".", "tags"]);
        let second = t.element(tags, 2);
        let odd = t.child(second, &["[\"x y\"]"]);
        assert_eq!(path(&t, ROOT), "$");
        assert_eq!(path(&t, user), "$.user");
        assert_eq!(path(&t, second), "$.user.tags[2]");
        assert_eq!(path(&t, odd), "$.user.tags[2][\"x y\"]");
        // Siblings share their parent's nodes.
        let name = t.child(user, &[".name"]);
        assert_eq!(path(&t, name), "$.user.name");
        assert_eq!(t.len(), 6);
    }
}
