//! Cross-site scripting signatures (besides libinjection's HTML5 tokenizer).

use super::targets::{ARGS, DOC, HEADERS, INPUT, NAMES, PATH};
use super::{Kind, Rule, Severity, View, alt, rule};
use Severity::{Critical, Error, Warning};

const K: Kind = Kind::Xss;

/// Event handler attribute names (without `on`).
const EVENTS: &[&str] = &[
    "error",
    "load",
    "click",
    "dblclick",
    "mouse",
    "key",
    "focus",
    "blur",
    "change",
    "input",
    "submit",
    "reset",
    "drag",
    "drop",
    "scroll",
    "resize",
    "unload",
    "beforeunload",
    "animation",
    "transition",
    "pointer",
    "toggle",
    "begin",
    "end",
    "start",
    "finish",
    "pageshow",
    "pagehide",
    "hashchange",
    "popstate",
    "message",
    "play",
    "pause",
    "canplay",
    "loadstart",
    "loadeddata",
    "progress",
    "search",
    "select",
    "wheel",
    "copy",
    "cut",
    "paste",
    "auxclick",
    "afterprint",
    "beforeprint",
    "show",
    "invalid",
    "readystatechange",
    "bounce",
    "activate",
    "beforeactivate",
    "contextmenu",
    "abort",
    "durationchange",
    "emptied",
    "ended",
    "seek",
    "stalled",
    "suspend",
    "timeupdate",
    "volumechange",
    "waiting",
    "touch",
    "formdata",
    "securitypolicyviolation",
    "webkit",
    "filterchange",
    "lose",
    "move",
    "propertychange",
    "help",
    "repeat",
    "zoom",
    "storage",
    "online",
    "offline",
    "beforeinput",
    "beforetoggle",
    "content",
    "cuechange",
    "fullscreen",
    "gotpointercapture",
    "scrollend",
    "slotchange",
];

/// The XSS rules.
pub fn rules() -> Vec<Rule> {
    let t = INPUT | PATH;
    let th = t | HEADERS;
    let events = format!("on(?:{})[a-z]*", alt(EVENTS));
    vec![
        rule(
            "xss-script-tag",
            K,
            Critical,
            1,
            View::Low,
            th,
            r"<\s*script\b[^>]*>|<\s*/\s*script\s*>|<\s*script\b[\s/]+(?:src|type|language|charset|async|defer|nonce|crossorigin|for|event|xmlns)\b|<\s*script\s*/|\bscript\s*>",
        ),
        rule(
            "xss-script-uri",
            K,
            Critical,
            1,
            View::Low,
            th,
            r#"(?:j\s*a\s*v\s*a|v\s*b|l\s*i\s*v\s*e)\s*s\s*c\s*r\s*i\s*p\s*t\s*:\s*(?:(?:[a-uw-z_$][\w$.]*|v[a-np-z0-9_$.][\w$.]*|vo[a-hj-z0-9_$.][\w$.]*|voi[a-ce-z0-9_$.][\w$.]*|void[\w$.]+|vo|voi|v)\s*[(\[`=]|void\s*\(\s*[^0\s)]|//|/\*|['"`({\[!~+-]|\\|&#|%)"#,
        ),
        rule(
            "xss-event-handler-tag",
            K,
            Critical,
            1,
            View::Low,
            th,
            format!(r#"<[a-z!/?][^>]*?[\s/"'`]{events}\s*="#),
        ),
        rule(
            "xss-event-handler-attr",
            K,
            Critical,
            1,
            View::Low,
            th,
            format!(
                r#"['"`][\s/]*{events}\s*=|^\s*{events}\s*=\s*['"`]?\s*[\w$.]+\s*[(`]|\s{events}\s*=\s*['"`]?\s*(?:alert|prompt|confirm|eval|javascript|document|window|this\.|top\b|self\b|location|fetch|import|settimeout|string\.fromcharcode)"#
            ),
        ),
        rule(
            "xss-dangerous-tag",
            K,
            Critical,
            1,
            View::Low,
            th,
            r"<\s*(?:[a-z]*:)?(?:iframe|frame|frameset|object|embed|applet|base|meta|isindex|xmp|plaintext|portal|bgsound|layer|ilayer|vmlframe|xss|import|handler|listener|noscript)\b|<\s*(?:v|xml|svg):\w+|<\s*\?\s*import\b|<\s*[a-z]+\s*:\s*script\b|<\s*[a-z](?:\s+[a-z]){2,}\b|<\s*link\b[^>]*\bhref\s*=",
        ),
        rule(
            "xss-style-injection",
            K,
            Critical,
            1,
            View::Low,
            t,
            r#"\bstyle\s*=[^>]*?(?:expression\s*\(|javascript:|url\s*\(|-moz-binding|behavior\s*:)|:\s*expression\s*\(|-moz-binding\s*:|\bbehavior\s*:\s*url\s*\(|@import\s+(?:url\s*\(\s*)?['"]?\s*(?:javascript|data|https?:|//|\\\\)|<\s*style\b[^>]*>[^<]*?(?:@import\b|expression\s*\(|-moz-binding|\bbehavior\s*:)"#,
        ),
        rule(
            "xss-data-uri",
            K,
            Critical,
            1,
            View::Low,
            t,
            r"\bdata\s*:\s*(?:text/html|text/javascript|application/(?:x-)?javascript|application/xhtml|text/xml|image/svg\+xml\s*;\s*base64\s*,\s*phn2z)",
        ),
        // `document.cookie+` is a concatenation before a quote, a call or
        // the end, not before a word: a path that writes its spaces as `+`
        // (`/tags/document.cookie+policy`). Markup set from a string
        // literal without a tag (`x.innerHTML = 'hello';`) is no sink.
        rule(
            "xss-js-sink",
            K,
            Critical,
            1,
            View::Sql,
            th,
            r"\(\s*document\s*\)\s*\[|\.textcontent\s*=|[(+=,:;{\[]\s*document\s*\.\s*cookie\s*(?:$|[^\w\s])|\bdocument\s*\.\s*cookie\s*(?:[);,=\]}]|\+\s*(?:[^\sa-z]|$)|$)|\bdocument\s*\.\s*(?:write(?:ln)?\s*\(|domain\b|location\b|body\.innerhtml)|\b(?:window|document|top|self|parent)\s*\.\s*location\s*(?:\.\s*href\s*)?=[^=]|\.(?:inner|outer)html\s*=\s*(?:$|[^\s'\x22`]|['\x22`][^'\x22`]*(?:<|['\x22`]\s*[-+*.\[(?|&]))|\bstring\s*\.\s*fromcharcode\s*\(|\b(?:self|top|window|parent|this)\s*\[\s*['\x22`]|\blocation\s*\.\s*(?:href|hash)\s*=|\binsertadjacenthtml\s*\(",
        )
        .plain(),
        rule(
            "xss-alert-call",
            K,
            Critical,
            1,
            View::Low,
            th,
            r#"\b(?:alert|prompt|confirm)\s*(?:\(\s*(?:\d|['"`/]|document|window|this|location|string|\)|\[)|`)"#,
        ),
        // The same sinks called without a plain `name(`: `(alert)(1)`,
        // `alert.call(null, 1)`, `alert?.(1)`, `document["cookie"]`,
        // `top["al"+"ert"]`, a member of the global object computed and
        // called (`top[/al/.source+/ert/.source](1)`, `self[atob(x)](1)`;
        // written without a space before `[`, as no prose writes it), a
        // sink passed as a callback (`[1].find(alert)`).
        rule(
            "xss-js-call-evasion",
            K,
            Critical,
            1,
            View::Low,
            th,
            r#"\(\s*(?:alert|confirm|prompt|eval)\s*\)\s*(?:\(|`)|\b(?:alert|confirm|prompt|eval)\s*(?:\?\.\s*\(|\.\s*(?:call|apply|bind)\s*\()|\bdocument\s*(?:\?\.\s*cookie\b|\[\s*['"`]\s*cookie)|\b(?:top|window|self|parent|frames|globalthis)\s*(?:\?\.)?\s*\[\s*['"`]\s*(?:al|ev|con|pro)|\b(?:top|window|self|parent|frames|globalthis)(?:\?\.)?\[[^\]\n]{1,80}\]\s*(?:\(|`)|\.\s*(?:find|map|filter|foreach|some|every|reduce|then)\s*\(\s*(?:alert|confirm|prompt|eval)\s*\)"#,
        ),
        rule(
            "xss-utf7",
            K,
            Critical,
            1,
            View::Dec,
            t,
            r"\+AD[w4]-|\+ACI-|\+ADs-",
        ),
        rule(
            "xss-us-ascii",
            K,
            Critical,
            1,
            View::Dec,
            t,
            r"\xc2\xbc\s*/?\s*(?:script|img|svg|iframe|body)|(?:script|img|svg|iframe)[^\xc2]{0,30}\xc2\xbe",
        ),
        rule(
            "xss-tag-breakout",
            K,
            Error,
            1,
            View::Low,
            t,
            r#"</\s*(?:title|textarea|style|noscript|script|xmp|iframe|noembed|noframes|template|option)\s*>\s*<\s*(?:svg|img|script|iframe|body|details|video|audio|input|object|embed|math|a\s)|^\s*['"]?\s*/?>\s*<\s*(?:svg|img|script|iframe|body|a|details|video|audio|input|object|embed|math)\b"#,
        ),
        rule(
            "xss-srcdoc",
            K,
            Critical,
            1,
            View::Low,
            t,
            r#"\b(?:srcdoc|formaction|xlink:href)\s*=|<\s*(?:svg|math)\b[^>]*>[^<]*<\s*(?:animate|set|use|a|image|foreignobject)\b"#,
        ),
        rule(
            "xss-dom-constructor",
            K,
            Error,
            1,
            View::Low,
            t,
            r#"\bdocument\s*\.\s*createelement\s*\(|\.appendchild\s*\(|\bsettimeout\s*\(\s*['"`]|\bsetinterval\s*\(\s*['"`]|\bnew\s+function\s*\(\s*['"`]"#,
        ),
        // A script element made in code (`createElement('script')`, the
        // HTML namespace's too): the page runs what its `src` or text
        // names. Another element (`createElement('div')`) is the rule
        // above's.
        rule(
            "xss-script-element",
            K,
            Critical,
            1,
            View::Low,
            t,
            r#"\bcreateelement(?:ns)?\s*\(\s*(?:[^,()]{0,100},\s*)?\\?['"`]\s*script\s*\\?['"`]\s*\)"#,
        ),
        // A module loaded from another host or a data URL: the page runs
        // whatever it serves.
        rule(
            "xss-dynamic-import",
            K,
            Critical,
            1,
            View::Low,
            t,
            r#"\bimport\s*\(\s*['"`]\s*(?:https?:|//|data:|blob:)"#,
        ),
        // A JavaScript comment may sit between any two tokens:
        // `[] . /**/ sort . call`${alert}``.
        rule(
            "xss-jsfuck",
            K,
            Critical,
            1,
            View::Low,
            t,
            r"!\s*!\s*\[\s*\]|\[\s*!\s*\[\s*\]\s*\]|\(\s*!\s*\[\s*\]|\(\s*!\s*\[\s*\]\s*\+\s*\[\s*\]\s*\)|\[\s*\]\s*\[\s*\(\s*!\s*\[|\.\s*(?:/\*[^*]*\*/\s*)*(?:call|apply|bind)\s*`|(?:\breflect|\barray|\[\s*\])\s*\.\s*(?:/\*[^*]*\*/\s*)*(?:sort|map|filter|find|apply|construct)\s*\.\s*(?:/\*[^*]*\*/\s*)*call\b",
        ),
        rule(
            "xss-html-comment",
            K,
            Warning,
            2,
            View::Low,
            t,
            r"<!--|-->|<!\[cdata\[",
        ),
        // Markup with no script: a link to another site, or the page's
        // own structure, injected into a page that reflects the value
        // (content spoofing, phishing). Rich-text fields send links, so
        // only paranoia 2 counts them.
        rule(
            "xss-html-injection",
            K,
            Critical,
            2,
            View::Low,
            INPUT,
            r#"<\s*a\b[^>]*\bhref\s*=\s*['"]?\s*(?:https?:)?//|<\s*/?\s*(?:html|body|head)\s*>|<\s*(?:h[1-6]|marquee|center|font)\b[^>]*>[^<]*<\s*/\s*(?:h[1-6]|marquee|center|font)\s*>"#,
        ),
        rule(
            "xss-any-tag-attr",
            K,
            Warning,
            2,
            View::Low,
            t,
            r"<\s*(?:svg|img|image|body|video|audio|source|input|details|marquee|math|form|style|link|object)\b[^>]*\b(?:src|href|on\w+|style|action|data)\s*=",
        ),
        rule(
            "xss-js-keyword",
            K,
            Warning,
            3,
            View::Low,
            t,
            r"\b(?:alert|prompt|confirm|eval)\s*\(|\bjavascript\s*:",
        ),
        rule(
            "xss-event-handler-any",
            K,
            Critical,
            1,
            View::Low,
            INPUT,
            r#"(?:^|[\s"'`/;])on[a-z]{3,50}\s*=[^=&]"#,
        ),
        rule(
            "xss-script-scheme-obfuscated",
            K,
            Critical,
            1,
            View::Low,
            th,
            r"(?:j\s+a\s*v\s*a\s*s\s*c\s*r\s*i\s*p\s*t|j\s*a\s+v\s*a\s*s\s*c\s*r\s*i\s*p\s*t|j\s*a\s*v\s+a\s*s\s*c\s*r\s*i\s*p\s*t|j\s*a\s*v\s*a\s+s\s*c\s*r\s*i\s*p\s*t|j\s*a\s*v\s*a\s*s\s+c\s*r\s*i\s*p\s*t|j\s*a\s*v\s*a\s*s\s*c\s+r\s*i\s*p\s*t|j\s*a\s*v\s*a\s*s\s*c\s*r\s+i\s*p\s*t|j\s*a\s*v\s*a\s*s\s*c\s*r\s*i\s+p\s*t|j\s*a\s*v\s*a\s*s\s*c\s*r\s*i\s*p\s+t|v\s+b\s*s\s*c\s*r\s*i\s*p\s*t|v\s*b\s+s\s*c\s*r\s*i\s*p\s*t|v\s*b\s*s\s+c\s*r\s*i\s*p\s*t|v\s*b\s*s\s*c\s+r\s*i\s*p\s*t|v\s*b\s*s\s*c\s*r\s+i\s*p\s*t|v\s*b\s*s\s*c\s*r\s*i\s+p\s*t|v\s*b\s*s\s*c\s*r\s*i\s*p\s+t)\s*:|\burl\s*\(\s*['\x22]?\s*(?:javascript|vbscript|data\s*:\s*text/html)",
        ),
        rule(
            "xss-ssi-directive",
            K,
            Critical,
            1,
            View::Low,
            th,
            r"<!--\s*#\s*(?:exec|include|echo|set|config|fsize|flastmod|printenv)\b",
        ),
        rule(
            "xss-html-comment-alone",
            K,
            Warning,
            1,
            View::Low,
            ARGS | NAMES,
            r"^\s*(?:-->|<!--)\s*$",
        ),
        rule(
            "xss-js-timer-call",
            K,
            Critical,
            1,
            View::Low,
            t,
            r#"\bset(?:timeout|interval)\s*\(\s*[\w$.]+\s*,\s*\d|['"]\s*;\s*(?:settimeout|setinterval|eval|alert|prompt|confirm)\s*\("#,
        ),
        rule(
            "xss-window-location",
            K,
            Critical,
            1,
            View::Low,
            ARGS | NAMES,
            r"\bwindow\s*\.\s*location\b",
        )
        .plain(),
        // A value that starts with a call of a code sink. The call must
        // be the start of an expression: its arguments hold a call or run
        // to the end, or the closing parenthesis ends the value or goes on
        // with punctuation (`eval(name)//`, `atob(x);`). A closed call and
        // then a word (`eval(uation) form`) is no JavaScript: a syntax
        // error runs nothing.
        rule(
            "xss-js-call-value",
            K,
            Critical,
            1,
            View::Low,
            ARGS | NAMES,
            r"^\s*(?:atob|btoa|eval|settimeout|setinterval|new\s+function|string\.fromcharcode)\s*\((?:[^()]*(?:\(|$)|[^()]*\)\s*(?:$|[^\w\s]))",
        ),
        // A break out of a JavaScript string, a call, and a way back in:
        // `'-settimeout(name)-'`, `'?function(name)():'`, `")||fetch(x)||("`.
        // The value starts with the quote, which prose does not follow
        // with an operator and a call.
        rule(
            "xss-js-string-breakout",
            K,
            Critical,
            1,
            View::Low,
            ARGS | NAMES | DOC,
            r#"^\s*['"`]\s*\)*\s*(?:[-+*/%^|&,?:]|&&|\|\||\bin\s)\s*(?:new\s+)?(?:[a-z_$][\w$]*|\[[^\]]{0,40}\])(?:\s*(?:\.\s*[a-z_$][\w$]*|\[[^\]]{0,40}\]))*\s*\([^()]*\)(?:\s*\([^()]*\))*\s*(?:\.\s*[a-z_$][\w$]*\s*(?:\([^()]*\))?)*\s*\(*\s*(?:[-+*/%^|&,?:]|&&|\|\||\bin\s|//)\s*\(*\s*['"`]?|^\s*['"`]\s*[)\]}]*\s*;\s*[a-z_$][\w$.]*\s*(?:\([^()]*\)|=\s*[\w$'"`])[^;]{0,80};?\s*(?://|[{(\[]\s*['"`]|['"`]\s*$)"#,
        ),
    ]
}
