//! Java attacks: dangerous classes, deserialization gadgets (plain and
//! base64-encoded), OGNL/SpEL expressions, Spring class-loader abuse.

use super::targets::{FILE, HEADERS, INPUT, PATH};
use super::{Kind, Rule, Severity, View, rule};
use Severity::{Critical, Error};

const K: Kind = Kind::Java;

/// Names found in Java deserialization gadget chains.
const GADGETS: &[&str] = &[
    "runtime",
    "processbuilder",
    "clonetransformer",
    "forclosure",
    "instantiatefactory",
    "instantiatetransformer",
    "invokertransformer",
    "prototypeclonefactory",
    "prototypeserializationfactory",
    "whileclosure",
];

/// The standard base64 alphabet.
const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 of `data` without padding.
fn base64(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..=chunk.len() {
            out.push(char::from(B64[((n >> (18 - 6 * k)) & 63) as usize]));
        }
    }
    out
}

/// The parts of the base64 encoding of `word` that do not depend on what
/// precedes or follows it, for each of the three alignments.
fn base64_variants(word: &str) -> Vec<String> {
    let mut out = Vec::new();
    for offset in 0..3usize {
        let mut data = vec![0u8; offset];
        data.extend_from_slice(word.as_bytes());
        let full = data.len() / 3 * 3;
        let enc = base64(&data[..full]);
        let skip = [0, 2, 3][offset];
        if enc.len() > skip + 5 {
            out.push(enc[skip..].to_owned());
        }
    }
    out
}

/// The Java rules.
pub fn rules() -> Vec<Rule> {
    let t = INPUT | HEADERS;
    let gadgets = GADGETS[2..].join("|");
    // The plain `java.lang` classes but `Thread` (`java-class`).
    let plain = "object|string(?:builder|buffer)?|integer|number";
    let encoded: Vec<String> = GADGETS[1..]
        .iter()
        .flat_map(|w| base64_variants(w))
        .collect();
    vec![
        // The plain classes (`java.lang.String`, `Thread`...) count in
        // code (`@java.lang.Thread@sleep`, `T(java.lang.Thread)`, `new
        // java.lang.String(`) and, but for `Thread` (a stack frame's
        // module), as a value of their own (a type for Jackson to make);
        // not in a stack trace or an error message (`at
        // java.lang.Thread.run(...)`).
        rule("java-class", K, Critical, 1, View::Low, t, format!(r"\borg\.apache\.commons\b|(?:[@(=]\s*|\bnew\s+)java\.lang\.(?:thread\w*|{plain})\b|\bjava\.lang\.(?:thread\w*|{plain})\s*[@)]|^\s*java\.lang\.(?:{plain})\s*$|\bjava\.(?:lang\.(?:runtime|processbuilder|process|system|class(?:loader)?|reflect|invoke|module|unixprocess|processimpl)|io\.\w+|net\.(?:url\w*|socket\w*|inetaddress|urlclassloader)|nio\.(?:file\.\w+|channels)|util\.(?:scanner|zip\.\w+|jar\.\w+|prefs)|beans\.(?:xmldecoder|expression|statement)|rmi\.\w+)\b|\bjavax\.(?:script|naming|management|el|xml\.transform|imageio)\b|\borg\.apache\.(?:commons\.(?:collections\w*|beanutils|fileupload|io)|xalan|xerces|struts2?|tomcat|catalina|naming|log4j|velocity|bcel|myfaces|shiro|wicket|xbean|openjpa)\b|\bcom\.sun\.(?:org\.apache|jndi|rowset|xml|net|corba)\b|\borg\.springframework\.(?:context|beans|expression|jndi|transaction)\b|\bcom\.opensymphony\.xwork2\b|\borg\.omg\.corba\b|\bognl\.\w+|\bsun\.(?:misc\.(?:unsafe|base64)|reflect|rmi)\b|\borg\.codehaus\.groovy\.runtime\b|\bcom\.mchange\.v2\b|\bbsh\.interpreter\b|\bjdk\.nashorn\b|\bclojure\.(?:core|main)\b|\bnet\.sf\.json\b|\bcom\.alibaba\.fastjson\b|\borg\.hibernate\.\w+|\bgroovy\.lang\.\w+|\bjava\.(?:\w+\.)*(?:runtime|processbuilder)\b")).plain(),
        rule("java-gadget", K, Critical, 1, View::Low, t, format!(r"\b(?:{gadgets})\b|\bprocessbuilder\.\w+|\bruntime\.(?:exec|getruntime)\b")).plain(),
        rule("java-gadget-base64", K, Critical, 1, View::Dec, t, encoded.join("|")).plain(),
        // A value that is just `runtime` in base64, at any alignment.
        rule("java-runtime-base64", K, Critical, 1, View::Dec, t, r"^\s*[A-Za-z0-9+/]{0,3}(?:cnVudGlt|J1bnRp|ydW50aW1l)[A-Za-z0-9+/]{0,4}={0,2}\s*$").plain(),
        // The floating-point parsing DoS of Java and PHP (CVE-2010-4476).
        rule("java-float-dos", K, Critical, 1, View::Low, t, r"2\.225073858507201\d*e-0*308").plain(),
        // A serialized object's magic, in the path too (a route that
        // reads a segment as state, `/api/items/rO0ABXNy...`).
        rule("java-serialized", K, Critical, 1, View::Dec, t | FILE | PATH, r"rO0AB|KztAAU|Cs7QAF|\bACED0005[0-9A-F]{4}|\xac\xed\x00\x05").plain(),
        rule("java-serialized-hex", K, Critical, 1, View::Low, t | FILE, r"\baced0005[0-9a-f]{4}").plain(),
        rule("java-ognl", K, Critical, 1, View::Low, t | PATH, r"%\{\s*\(?\s*#|#_memberaccess|@ognl\.|#context\s*\[|\(\s*#\w+\s*=|@java\.lang\.\w+@|#request\s*\.|#attr\s*\[|\$\{\s*#|\bdenymethodexecution\b|\ballowstaticmethodaccess\b").plain(),
        rule("java-runtime-exec", K, Critical, 1, View::Low, t | PATH, r"\.getruntime\s*\(\s*\)|\bruntime\s*\.\s*getruntime\b|\bnew\s+(?:java\.lang\.)?processbuilder\b|\.forname\s*\(\s*['\x22]|\.getmethod\s*\(\s*['\x22]|\.getdeclaredmethod\s*\(|\.newinstance\s*\(\s*\)\s*\.|\bt\s*\(\s*java\.lang\.\w+\s*\)|\.exec\s*\(\s*['\x22](?:/bin|cmd|bash|sh|calc|touch|wget|curl|ping|nslookup|id|whoami)"),
        rule("java-class-loader", K, Critical, 1, View::Low, INPUT | PATH, r"\bclass\.(?:module\.)?classloader\b|\.getclass\s*\(\s*\)\s*\.\s*(?:forname|getclassloader)|\bclassloader\.(?:resources|urls|parent)\b|\[\s*['\x22]?class['\x22]?\s*\]\s*\[\s*['\x22]?classloader").plain(),
        // Classes Jackson's polymorphic typing is made to build (a JSON
        // array of a class name and its properties), and H2's JDBC URL
        // that runs a script when a pool connects to it.
        rule("java-jackson-gadget", K, Critical, 1, View::Low, INPUT, r"\bch\.qos\.logback\.core\.db\.(?:drivermanager|jndi)connectionsource\b|\bcom\.sun\.rowset\.jdbcrowsetimpl\b|\borg\.apache\.xbean\.propertyeditor\.jndiconverter\b|\bcom\.zaxxer\.hikari\.hikari(?:config|datasource)\b|\borg\.springframework\.context\.support\.(?:classpath|filesystem)xmlapplicationcontext\b|\bcom\.mchange\.v2\.c3p0\.(?:wrapperconnectionpooldatasource|jndirefforwardingdatasource)\b|\boracle\.jdbc\.rowset\.oraclejdbcrowset\b|\bcom\.sun\.org\.apache\.xalan\.internal\.xsltc\.trax\.templatesimpl\b|\borg\.codehaus\.groovy\.runtime\.(?:convertedclosure|methodclosure)\b|\bbr\.com\.anteros\.dbcp\.\w+|\borg\.apache\.tomcat\.dbcp\.dbcp2?\.\w+|\bjdbc:h2:[^\s]*;\s*init\s*=\s*(?:runscript|create\s+alias)\b|\bjdbc:mysql:[^\s]*\bautodeserialize\s*=\s*true|\bcorbaname:iiop:").plain(),
        rule("java-fastjson-type", K, Critical, 1, View::Low, INPUT, r#"['"]@type['"]\s*:\s*['"][\w.$]+['"]"#),
        rule("java-jsp-upload", K, Error, 1, View::Low, INPUT, r"<%@\s*page\b|<jsp:(?:scriptlet|expression|declaration)\b|\bjava\.io\.file(?:output|input)stream\b"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_base64_like_the_standard() {
        assert_eq!(base64(b"runtime"), "cnVudGltZQ");
        assert!(base64_variants("runtime").contains(&"cnVudGlt".to_owned()));
    }
}
