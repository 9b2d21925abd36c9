//! A command name written so that only a shell reads it as one: quotes
//! inside the word (`ti''me`, `w'h'o'am'i`, `""p""y""t""h""o""n""3`), a
//! backslash between its letters (`w\ho\am\i`), or a brace list glued to
//! letters or with an empty item (`c{a,oun}t`, `{id,}`, `{,ip,a}`). The
//! shell view already reads such words as the command; this is the
//! evidence that someone spelled it so: no prose splits a word with quote
//! pairs, and none of these spellings is needed to write a command name.

use crate::detect::normalize::is_plain;
use crate::detect::rules::cmdi::is_command;

/// Longest command name looked for, splitting removed (a word of any
/// length is read: padding a name with empty quotes changes nothing for a
/// shell).
const NAME_MAX: usize = 48;

/// Bytes of a word: what a command name, a version and the splitting are
/// made of.
fn word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'\'' | b'"' | b'\\')
}

/// Bytes a word can start with.
fn word_start(b: u8) -> bool {
    word_byte(b) || b == b'{'
}

/// Bytes that end every word (commas and closing braces end some).
fn hard_boundary(b: u8) -> bool {
    !(word_start(b) || matches!(b, b'}' | b','))
}

/// The word that starts at or after `j` (a `{` may start one): its span.
fn next_word(low: &[u8], mut j: usize) -> Option<(usize, usize)> {
    while j < low.len() && !word_start(low[j]) {
        j += 1;
    }
    if j >= low.len() {
        return None;
    }
    let start = j;
    let mut depth = 0usize;
    while j < low.len() {
        match low[j] {
            b'{' => depth += 1,
            b'}' if depth > 0 => depth -= 1,
            b',' if depth > 0 => {}
            b if word_byte(b) => {}
            _ => break,
        }
        j += 1;
    }
    Some((start, j))
}

/// The next match of a search at or after a position that only moves
/// forward, remembered until the position passes it.
#[derive(Default)]
struct Ahead {
    /// None: not searched yet; Some(None): no match left.
    found: Option<Option<usize>>,
}

impl Ahead {
    fn at(
        &mut self,
        from: usize,
        search: impl Fn(&[u8]) -> Option<usize>,
        text: &[u8],
    ) -> Option<usize> {
        match self.found {
            Some(Some(k)) if k >= from => Some(k),
            Some(None) => None,
            _ => {
                let k = text.get(from..).and_then(search).map(|k| from + k);
                self.found = Some(k);
                k
            }
        }
    }
}

/// The first command name spelled with splitting in the folded value
/// `low`, as written. Only the words around a quote, a backslash or a
/// brace are read.
pub(super) fn find(low: &[u8]) -> Option<String> {
    // The next quote or backslash and the next brace at or after `from`
    // (which never goes back), each searched for again only once `from`
    // has passed it: searching both from `from` every time read a value of
    // many braces and no quote to its end once per brace.
    let mut quote = Ahead::default();
    let mut brace = Ahead::default();
    let mut next = |from: usize| {
        let a = quote.at(from, |t| memchr::memchr3(b'\'', b'"', b'\\', t), low);
        let b = brace.at(from, |t| memchr::memchr(b'{', t), low);
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    };
    // A quote or backslash at a word's start or end (`"key"`) splits
    // nothing; one inside a split has a word byte on both sides (the
    // first of a run of quotes, at least).
    let sep = |b: u8| !word_start(b);
    let at_edge = |k: usize| k == 0 || k + 1 == low.len() || sep(low[k - 1]) || sep(low[k + 1]);
    // Where the search goes on, and where the words read so far end.
    let (mut i, mut done) = (0, 0);
    while i < low.len()
        && let Some(k) = next(i)
    {
        i = k + 1;
        if low[k] != b'{' && at_edge(k) {
            continue;
        }
        // Back to the last byte that ends every word: reading words from
        // there finds the one that holds `k` as reading from the start does.
        let mut j = k;
        while j > done && !hard_boundary(low[j - 1]) {
            j -= 1;
        }
        while let Some((s, e)) = next_word(low, j) {
            if s > k {
                break;
            }
            let word = &low[s..e];
            if spelled_command(word) {
                return Some(String::from_utf8_lossy(word).into_owned());
            }
            j = e;
            done = e;
            i = i.max(e);
            if e > k {
                break;
            }
        }
    }
    None
}

/// Whether a word is a command name split by quotes, backslashes or a
/// brace list.
fn spelled_command(word: &[u8]) -> bool {
    if word.contains(&b'{') {
        return braced(word);
    }
    // Quotes and backslashes around the word are quoting, not splitting.
    let edge = |b: &u8| matches!(b, b'\'' | b'"' | b'\\');
    let inner = match (
        word.iter().position(|b| !edge(b)),
        word.iter().rposition(|b| !edge(b)),
    ) {
        (Some(s), Some(e)) => &word[s..=e],
        _ => return false,
    };
    // Most words are quoted whole (`"key"`): nothing inside.
    if memchr::memchr3(b'\'', b'"', b'\\', inner).is_none() {
        return false;
    }
    // An escaped quote is a literal one (`\"move\"`: JSON inside a
    // string), never a split.
    if word
        .windows(2)
        .any(|w| w[0] == b'\\' && matches!(w[1], b'\'' | b'"'))
    {
        return false;
    }
    let quotes = inner.iter().filter(|&&b| matches!(b, b'\'' | b'"')).count();
    // A backslash splits only between letters or digits (`w\ho`).
    let slashes = inner
        .windows(3)
        .filter(|w| w[1] == b'\\' && w[0].is_ascii_alphanumeric() && w[2].is_ascii_alphanumeric())
        .count();
    if quotes == 0 && slashes == 0 {
        return false;
    }
    // Each quote opens or closes within the word (a lone one is an
    // apostrophe: `don't`, `'I'd`).
    let balanced = |q: u8| word.iter().filter(|&&b| b == q).count() % 2 == 0;
    if quotes > 0 && !(balanced(b'\'') && balanced(b'"')) {
        return false;
    }
    if inner.len() - quotes - inner.iter().filter(|&&b| b == b'\\').count() > NAME_MAX {
        return false;
    }
    let name: String = inner
        .iter()
        .filter(|&&b| !matches!(b, b'\'' | b'"' | b'\\'))
        .map(|&b| char::from(b))
        .collect();
    // A quote split of a two-letter name is too often an apostrophe
    // (`I''d`, SQL's doubled quote); a backslash one is not.
    (name.len() >= 3 || quotes == 0) && is_command(&name)
}

/// A word with one brace list of plain items: its first expansion, when
/// the list is glued to letters or has an empty item, is a command.
fn braced(word: &[u8]) -> bool {
    let (Some(open), Some(close)) = (memchr::memchr(b'{', word), memchr::memchr(b'}', word)) else {
        return false;
    };
    if close < open || word[close + 1..].contains(&b'{') || word[..open].contains(&b'}') {
        return false;
    }
    let (pre, list, post) = (&word[..open], &word[open + 1..close], &word[close + 1..]);
    if memchr::memchr(b',', list).is_none() || !is_plain(pre) || !is_plain(post) {
        return false;
    }
    let items: Vec<&[u8]> = list.split(|&b| b == b',').collect();
    if !items.iter().all(|i| is_plain(i)) {
        return false;
    }
    let glued = !pre.is_empty() || !post.is_empty();
    if !glued && !items.iter().any(|i| i.is_empty()) {
        // `{id,name}`: a field list, not a spelling.
        return false;
    }
    items
        .iter()
        .map(|i| [pre, i, post].concat())
        .find(|w| !w.is_empty())
        .is_some_and(|w| is_command(&String::from_utf8_lossy(&w)))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn split_command_names_are_found() {
        for v in [
            "ti''me who",
            "w'h'o'am'i",
            "\"\"p\"\"y\"\"t\"\"h\"\"o\"\"n\"\"3\"\".\"\"1\"\"0\"\" \"\"c\"\"m\"\"d\"\"",
            "x; c''at /etc/hosts",
            "w\\ho\\am\\i",
            "l\\s -la",
            "c{a,oun}t /etc/hosts",
            "{id,}",
            "{,ip,a}",
            "un'am'e -a",
        ] {
            assert!(find(v.as_bytes()).is_some(), "{v}");
        }
    }

    #[test]
    fn prose_quotes_and_lists_are_not_commands() {
        for v in [
            "'I'd rather not,' she said",
            "I''d like two",
            "O'Keefe's and O''Brien's",
            "rock'n'roll night",
            "don't 'time' who",
            "'time' who",
            "fields={id,name}",
            "file{1,2}.txt",
            "\\d{2,} digits",
            "C:\\Users\\Public\\cat",
            "{\"id\":1,\"cat\":\"x\"}",
            "it's 'cat' and 'dog'",
            "\\date{\\today}",
            "{\\\"type\\\":\\\"move\\\",\\\"env\\\":\\\"id\\\"}",
            "rev\\ 2",
            "\\\"cc\\\"",
        ] {
            assert_eq!(find(v.as_bytes()), None, "{v}");
        }
    }

    /// `find` as first written: every word from the start.
    fn find_reference(low: &[u8]) -> Option<String> {
        let mut j = 0;
        while let Some((s, e)) = next_word(low, j) {
            let word = &low[s..e];
            if spelled_command(word) {
                return Some(String::from_utf8_lossy(word).into_owned());
            }
            j = e;
        }
        None
    }

    proptest! {
        /// Reading only the words around the splitting bytes finds what
        /// reading every word does.
        #[test]
        fn words_around_splitting_bytes_suffice(v in proptest::collection::vec(
            prop_oneof![
                Just(b'\''), Just(b'"'), Just(b'\\'), Just(b'{'), Just(b'}'), Just(b','),
                Just(b' '), Just(b';'), Just(b'c'), Just(b'a'), Just(b't'), Just(b'i'),
                Just(b'd'), Just(b'w'), Just(b'h'), Just(b'o'), any::<u8>(),
            ],
            0..60,
        )) {
            prop_assert_eq!(find(&v), find_reference(&v));
        }

        /// Splitting a command of three letters or more with a quote
        /// pair anywhere inside it is always found, whatever surrounds it.
        #[test]
        fn any_inner_quote_pair_is_found(
            cmd in prop::sample::select(vec!["whoami", "uname", "cat", "curl", "python3", "time", "who"]),
            at in 1usize..8,
            q in prop::sample::select(vec!["''", "\"\""]),
            before in "[a-z ;|&]{0,12}",
            after in "[a-z /-]{0,12}",
        ) {
            let at = at.min(cmd.len() - 1);
            let word = format!("{}{q}{}", &cmd[..at], &cmd[at..]);
            let v = format!("{before} {word} {after}");
            prop_assert!(find(v.as_bytes()).is_some(), "{}", v);
        }

        /// Any number of empty quote pairs inside the name is found.
        #[test]
        fn padding_with_empty_quotes_is_found(pairs in 1usize..400, at in 1usize..6) {
            let cmd = "whoami";
            let word = format!("{}{}{}", &cmd[..at], "''".repeat(pairs), &cmd[at..]);
            prop_assert!(find(format!("x;{word} ").as_bytes()).is_some(), "{}", word);
        }

        /// Never panics, and a value without a quote, a backslash or a
        /// brace is never a split command.
        #[test]
        fn plain_words_are_never_split(v in "[a-z0-9 ;|&/.,=-]{0,64}") {
            prop_assert_eq!(find(v.as_bytes()), None);
        }

        /// Any bytes are read, and what is found is a word of the value.
        #[test]
        fn any_bytes_are_read(v in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Some(w) = find(&v) {
                prop_assert!(String::from_utf8_lossy(&v).contains(&w), "{}", w);
            }
        }
    }
}
