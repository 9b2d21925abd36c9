//! Remote file inclusion, LDAP and XPath, XXE, NoSQL, template and edge
//! side include injection, spreadsheet formulas, CRLF, prototype pollution
//! and session fixation signatures.

use super::targets::{ARGS, BODY, DOC, FILE, FILENAME, HEADERS, INPUT, NAMES, PATH, UA_REF};
use super::{Kind, Rule, Severity, View, rule};
use Severity::{Critical, Error, Warning};

/// Extensions of a file a remote inclusion fetches: a server script, or
/// text the including script runs.
const REMOTE_SCRIPT: &str = r"php\d?|phtml|phar|inc|txt|asp|aspx|jsp|pl|cgi|sh|py|rb";

/// The rules of the smaller families.
pub fn rules() -> Vec<Rule> {
    let args = ARGS | NAMES | BODY | DOC;
    vec![
        // Remote file inclusion and dangerous URL wrappers.
        rule("rfi-wrapper", Kind::Rfi, Critical, 1, View::Low, args | UA_REF | PATH, r"\b(?:php|expect|phar|zip|glob|data|ogg|rar|ssh2(?:\.\w+)?|zlib|compress\.(?:zlib|bzip2)|netdoc|gopher|dict|ldap|ldaps|tftp|jndi|local_file|rmi|iiop)://|\bjar:(?:https?|file|ftp):|\bfile:(?://)?/"),
        // PHP's `data:` wrapper without slashes (`include($_GET['f'])`
        // with `data:text/plain;base64,PD9waHAg...` runs the text), and
        // a fetch of `data:text/plain` probing for it: a parameter or
        // name that is such a URI. Images (`data:image/png`) pass, and
        // JSON and XML documents, where files travel as data URIs.
        rule("rfi-data-text-uri", Kind::Rfi, Critical, 1, View::Low, ARGS | NAMES, r"^\s*data:\s*(?:text/(?:plain|x-php|php)|application/(?:x-)?(?:httpd-)?php)\s*(?:[;,]|$)"),
        rule("rfi-include-url", Kind::Rfi, Critical, 1, View::Low, args, r#"\b(?:include|require)(?:_once)?\s*\(?\s*['"]?\s*(?:https?|ftps?)://"#),
        rule("rfi-url-trailing-question", Kind::Rfi, Critical, 1, View::Low, ARGS, r"^(?:https?|ftps?)://[^?#\s]*\?+$|^(?:https?|ftps?|file)\?$"),
        // In JSON and XML strings only to a script or text file: beacons
        // carry page URLs with an empty query (`https://host/?`).
        rule("rfi-url-trailing-question-doc", Kind::Rfi, Critical, 1, View::Low, DOC, format!(r"^(?:https?|ftps?)://[^?#\s]*\.(?:{REMOTE_SCRIPT})\?+$")),
        // A UNC path to another host: Windows fetches it over SMB and
        // hands out NTLM credentials.
        rule("rfi-unc-path", Kind::Rfi, Critical, 1, View::Low, ARGS | DOC, r"^\s*\\\\[a-z0-9][\w.-]*[\\/][\w$.-]+"),
        // Apache mod_proxy `unix:` socket paths with a URL (CVE-2021-40438).
        rule("rfi-unix-socket-proxy", Kind::Ssrf, Critical, 1, View::Low, ARGS | NAMES | PATH, r"\bunix:[^|\s]*\|\s*(?:https?|ftp|wss?|h2c?)://"),
        // Any absolute URL in a parameter: share links and OAuth redirects
        // carry them, so only paranoia 3 counts it.
        rule("rfi-off-domain-url", Kind::Rfi, Warning, 3, View::Low, ARGS, r"^\s*(?:https?|ftps?)://"),
        // A URL to a server-side script or a text file to include: with
        // the URL above, paranoia 3 blocks it (`?page=https://x/shell.php`).
        rule("rfi-script-url", Kind::Rfi, Warning, 3, View::Low, ARGS | DOC, format!(r"^\s*(?:https?|ftps?)://[^?#\s]+\.(?:{REMOTE_SCRIPT})(?:$|[?#\x00])")),
        // LDAP filter injection.
        rule("ldap-filter", Kind::Ldap, Critical, 1, View::Low, args, r"\)\s*\(+\s*[|&!]|\)\s*\(\s*[\w.-]+\s*[~<>]?=|^\s*\*\s*\)\s*\(|[(|&!]\s*\(\s*(?:uid|cn|sn|ou|dc|objectclass|mail|givenname|samaccountname|userpassword|password|member|memberof|gidnumber|uidnumber|homedirectory|description)\s*[~<>]?=|\)\s*\(\s*\||\*\s*\)\s*\)\s*\("),
        // A value that is a wildcard and the filter closed twice (`*))`,
        // most often with a NUL after it that ends the string a C LDAP
        // library reads; the NUL is noted and removed before rules run).
        rule("ldap-wildcard-closes", Kind::Ldap, Critical, 1, View::Low, args | UA_REF | HEADERS, r"^\s*\*\s*\)\s*\)+\s*$"),
        rule("ldap-wildcard-close", Kind::Ldap, Error, 1, View::Low, args, r"^[^()]*\)\s*\(\s*\|?\s*$|\*\)\s*\(|\)\s*\(\s*&\s*\)|\)\s*\(\s*\|\s*\("),
        // XPath injection: location steps with an axis, and probes that
        // ask the document's shape (`count(/child::node())`,
        // `' or name()='x`).
        rule("xpath-axis", Kind::Ldap, Critical, 1, View::Low, args, r"\b(?:child|descendant|ancestor|parent|following|preceding|self|attribute|namespace)(?:-or-self|-sibling)?::(?:node|text|comment|processing-instruction)\s*\(|\b(?:count|string-length|local-name|name)\s*\(\s*/+(?:child|descendant)?(?:::)?[\w*]|['\x22]\s*(?:or|and)\s+(?:name|local-name|string-length|count|position)\s*\(\s*\)\s*[=<>]"),
        // XML external entities.
        rule("xxe-entity", Kind::Xxe, Critical, 1, View::Low, args | HEADERS | FILE, r"<!entity\b|<!doctype[^>\[]*\[|<!doctype\s+\w+\s+(?:system|public)\b|\bsystem\s+['\x22](?:file|https?|ftp|php|expect|jar|gopher|data|netdoc|dict|ldap)[:]|\bxi:include\b|\bxmlns:xi\s*=|w3\.org/2001/xinclude\b|<xsl:(?:value-of|copy-of|include|import)\b[^>]*(?:system-property|document\s*\(|unparsed-text)|<\?xml-stylesheet\b"),
        // NoSQL operators and ORM filter abuse.
        rule("nosql-operator-name", Kind::Nosql, Critical, 1, View::Low, NAMES, r"\[\s*\$(?:ne|eq|gt|gte|lt|lte|in|nin|regex|where|exists|or|and|nor|not|elemmatch|expr|type|size|all|mod|text|function|accumulator|jsonschema)\s*\]|^\$(?:ne|gt|gte|lt|lte|in|nin|regex|where|exists|or|and|nor|not|elemmatch|expr|function|accumulator|lookup|unionwith|merge|out|jsonschema|where|text|all|size|mod)$"),
        rule("nosql-operator-value", Kind::Nosql, Critical, 1, View::Low, ARGS | NAMES | BODY | DOC, r#"\[\s*\$(?:ne|eq|gt|gte|lt|lte|in|nin|regex|where|exists|or|and|nor|not|elemmatch|expr)\s*\]|\{\s*['"]?\$(?:ne|gt|gte|lt|lte|where|regex|nin|in|or|nor|exists|expr|function)['"]?\s*:|\$where\b|\bthis\.\w+\s*(?:==|!=|===|\.match\s*\()|\bdb\.\w+\.(?:find|insert|update|remove|drop|aggregate|mapreduce)\s*\(|['"]\s*\|\|\s*['"]?\d['"]?\s*==\s*['"]?\d|[\d'"]\s*(?:&&|\|\|)\s*this\.[a-z_]|['"][\s}\]]*,\s*\$(?:or|and|nor|where|ne|gt|gte|lt|lte|regex|nin|in|exists|expr|comment)\s*:\s*[\[{'"\w]|^\s*[\w'"]+\s*;\s*return\s+(?:true|false|1|this\b)"#),
        // ORM filter keys (Django, and the ORMs that copied its `__`
        // lookups) an API passes to `filter(**params)`: a lookup three
        // relations deep, on a secret field, or one that leaks a value a
        // character at a time. Field names hold single underscores
        // (`created_by__departments__employees__user__username__startswith`).
        rule("nosql-orm-lookup", Kind::Nosql, Critical, 1, View::Low, NAMES, r"^[a-z0-9]+(?:_[a-z0-9]+)*(?:__[a-z0-9]+(?:_[a-z0-9]+)*){2,}__(?:startswith|istartswith|endswith|iendswith|contains|icontains|regex|iregex|exact|iexact|gt|gte|lt|lte|in|isnull|range|search)$|^[a-z0-9_]+__(?:password|password_hash|secret|token|api_key|hash|salt)(?:__\w+)?$|^[a-z0-9]+(?:_[a-z0-9]+)*(?:__[a-z0-9]+(?:_[a-z0-9]+)*)*__(?:i?startswith|i?endswith|i?regex|has_keys?|has_any_keys|contained_by|isnull)$").plain(),
        // Server-side template injection.
        rule("ssti-expression", Kind::Ssti, Critical, 1, View::Low, args | UA_REF | FILENAME, r#"\{\{[^}]*?[\w'")\]]\s*\([^}]*\)\s*\}\}|\{\{[^}]*?(?:\d\s*[*+/-]\s*['"]?\d|__|config\b|self\b|request\b|\bsettings\.|\bsigner\b|secret_key|lipsum|cycler|joiner|namespace|range\s*\(|popen|import|\bclass\b|mro|subclasses|globals|builtins|getattr|\|\s*(?:attr|safe|e|join|format|map)\b|constructor|\[\s*['"])[^}]*\}\}|\$\{[^}]*?(?:\d\s*[*+/-]\s*\d|runtime|exec\s*\(|\bclass\b|forname|getclass|java\.|\bt\s*\(|\bnew\s|request\.|session\.|application\.|param\.|@[a-z_][\w.]{2,})[^}]*\}|#\{[^}]*?(?:\d\s*[*+/-]\s*\d|`|exec|system|%x|runtime|\bclass\b|require|process|open\s*\()[^}]*\}|<%=?\s*[^%]*?(?:\d\s*[*+/-]\s*\d|system|exec|`|eval|runtime|process|require|include|file\.|io\.|%x|\bif\b|\bopen\s*[(\s'"]|\bspawn\b|\b(?:public_)?send\s*\(|\benv\s*\[|marshal\.|yaml\.|\bdir\.|\buri\.|net::|\bkernel\b|instance_eval|class_eval|constantize|\bsecrets\b|secret_key_base|\bcredentials\b|\bsyscall\b|popen|const_get|\.method\s*\(|\bbinding\b|\benv\.)[^%]*%>|[*@~]\{[^}]*?(?:\bt\s*\(|java|runtime|\bnew\s|\d\s*[*+/-]\s*\d)|__\$\{[^}]*\}__|\bfreemarker\.template\.utility\.execute\b|<#assign\b|\?new\s*\(\s*\)|#set\s*\(\s*\$|\$class\.inspect|\{\s*(?:system|exec|shell_exec|passthru)\s*\(|\{\$smarty\.|\{if\s+(?:system|exec|phpinfo)"#).plain(),
        rule("ssti-template-tag", Kind::Ssti, Critical, 1, View::Low, args, r"\{%-?\s*(?:import|include|extends|set|for|macro|raw|debug|load|module|endfor|if|endif|elif|else|block|endblock|with|call|filter|print|autoescape)\b|\{\{\s*[a-z_]+\s*\.\s*[a-z_]+\s*\.\s*[a-z_]+|@\(\s*\d+\s*[*+]\s*\d+\s*\)|\{\{=\s*\d+\s*[*+]\s*\d+\s*\}\}|@\{[^}]{0,100}?\bsystem\.(?:diagnostics|io|environment|net|reflection|runtime)\.|@\(?\s*(?:new\s+)?system\.(?:diagnostics|io|environment|net|reflection|runtime)(?:\.\w+)+\s*\("),
        // The polyglot probe of template scanners (`${{<%[%'"}}%\.`):
        // the openers of three engines in a row.
        rule("ssti-polyglot", Kind::Ssti, Critical, 1, View::Low, args | UA_REF | FILENAME, r"(?:(?:\$\{|\{\{|<%|\[%|#\{|\{%)\W{0,4}){3}"),
        // Edge Side Includes: a cache in front of the application runs
        // the tag (an include from another host, cookies read out).
        rule("ssti-esi", Kind::Ssti, Critical, 1, View::Low, args | UA_REF | HEADERS, r"<\s*esi\s*:\s*(?:include|inline|vars|eval|choose|when|otherwise|try|attempt|except|remove|comment|assign|debug|function|param)\b|<!--\s*esi\b"),
        // XPath injection that closes a predicate and adds a union
        // (`x']|//*|//*['`).
        rule("xpath-union", Kind::Ldap, Critical, 1, View::Low, args | PATH, r#"['"]\s*\]\s*\|\s*/+\s*[\w*@]"#),
        // Spreadsheet formulas a CSV export hands to Excel or Sheets: a
        // DDE call (`=cmd|' /C calc'!A0`, `app|'topic'!item`) anywhere,
        // or a formula that fetches a URL or makes a link.
        rule("cmdi-spreadsheet-formula", Kind::Cmdi, Critical, 1, View::Low, args | PATH, r#"\b[a-z][a-z_.]*[a-z]\s*\|\s*'[^'\n]*'\s*!|^\s*[=+\-@]\s*(?:hyperlink|importxml|importdata|importfeed|importhtml|importrange|webservice|filterxml)\s*\("#),
        // CRLF injection, response splitting, requests inside values.
        rule("crlf-header-injection", Kind::Crlf, Critical, 1, View::Low, ARGS | NAMES | BODY | HEADERS, r"(?:\\r)?\\n\s*(?:set-cookie|location|content-type|content-length|refresh)\s*:|\n\s*(?:(?:set-cookie2?|content-(?:type|length|disposition|security-policy|encoding)|refresh|x-[\w-]+|remote-addr|transfer-encoding|access-control-allow-[\w-]+|cache-control|www-authenticate|strict-transport-security|etag|pragma|service-worker-allowed)\s*:|link\s*:\s*<|status\s*:\s*[1-5]\d\d\b|(?:proxy-)?authorization\s*:\s*(?:basic|bearer|digest|negotiate)\s|cookie\s*:\s*[\w.-]+=|host\s*:\s*[\w-]+\.[\w.-]+\s*(?:\r?\n|$)|location\s*:\s*(?:[a-z][\w+.-]*:|/))|\n\s*http/\d(?:\.\d)?\s+\d{3}\b"),
        // In JSON and XML documents, whose strings carry headers by design
        // (monitoring beacons send whole response headers), only a value
        // whose first line is no header and a header follows it.
        rule("crlf-header-injection-doc", Kind::Crlf, Critical, 1, View::Low, DOC, r"^[^\n:]*\n\s*(?:set-cookie|content-(?:type|length|disposition)|location|refresh|x-[\w-]+|transfer-encoding|access-control-allow-[\w-]+)\s*:"),
        rule("crlf-request-in-value", Kind::Crlf, Critical, 1, View::Low, ARGS | NAMES | BODY | HEADERS | DOC, r"\b(?:get|post|head|put|delete|options|trace|track|connect|patch|propfind|proppatch|mkcol|copy|move|lock|unlock)\s+(?:/|https?://)\S*\s+http/\d"),
        rule("crlf-in-name-or-path", Kind::Crlf, Critical, 1, View::Low, NAMES | PATH, r"\n"),
        rule("crlf-header-like", Kind::Crlf, Warning, 1, View::Low, ARGS, r"\n\s*[a-z][a-z-]{2,30}\s*:\s*\S"),
        // A line break then a header: splitting a header value.
        rule("crlf-header-splitting", Kind::Crlf, Critical, 1, View::Low, HEADERS, r"\n\s*[a-z][a-z0-9-]{1,40}\s*:|\n\s*<\s*(?:html|head|body|script|title|meta)\b"),
        rule("crlf-html-after-break", Kind::Crlf, Critical, 1, View::Low, ARGS | NAMES, r"\n\s*<\s*(?:html|head|body|title|meta)\b[^>]*>"),
        // Mail header injection: a field copied into a message's headers
        // (PHP's mail(), a contact form's sender or subject) that adds a
        // Bcc line, or an address field whose address a header line
        // follows. A letter pasted into a message starts no line with Bcc
        // (its readers never see one), and no address field holds a line
        // break; `To: support` and `cc: bob@...` inside prose pass.
        rule("crlf-mail-header", Kind::Crlf, Critical, 1, View::Low, ARGS | BODY | DOC, r"\n\s*bcc\s*:\s*[\w.+-]+@|^\s*[\w.+-]+@[\w-]+(?:\.[\w-]+)+\s*\n\s*(?:b?cc|to|from|reply-to|sender|subject)\s*:"),
        // Mail protocol commands after a line break: SMTP, IMAP and POP3
        // injection through a field copied into a mail session.
        rule("crlf-mail-command", Kind::Crlf, Critical, 1, View::Low, ARGS | BODY | DOC | HEADERS, r#"\n\s*(?:(?:mail\s+from|rcpt\s+to)\s*:\s*(?:<|[\w.+-]+@)|(?:ehlo|helo)\s+[\w.-]+\s*$|(?:data|quit|rset|starttls|capa|stat)\s*$|(?:vrfy|expn|help)\s+\S+\s*$|(?:retr|dele|list|top|uidl)\s+\d+(?:\s+\d+)?\s*$|(?:apop|auth)\s+\S+\s+[\w+/=]{8,}\s*$|user\s+\S+\s*\n\s*pass\s)|\n\s*[a-z]{0,4}\d{0,5}\s+(?:(?:uid\s+)?(?:store|fetch|copy|move)\s+\d+(?:[:,]\d+)*(?:\s|$)|(?:examine|select|status|create|delete|subscribe)\s+(?:inbox\b|"[^"]*")|append\s+\S+\s+\(|search\s+(?:charset|text|flagged|deleted|since|from|all|unseen|seen|header|body|subject)\b|authenticate\s+(?:plain|login|cram-md5|xoauth2|gssapi)\b|list\s+"[^"]*"\s+"|login\s+\S+\s+\S+\s*$|(?:logout|noop|capability|expunge|check|close|quit)\s*$)"#),
        // Prototype pollution.
        rule("prototype-pollution", Kind::PrototypePollution, Critical, 1, View::Low, INPUT | PATH, r"__proto__|\bconstructor\s*(?:\.|\[\s*['\x22]?)\s*prototype\b|\bprototype\s*\[\s*['\x22]?(?:__proto__|constructor)|\[\s*['\x22]?constructor['\x22]?\s*\]\s*\[\s*['\x22]?prototype\b").plain(),
        // Session fixation.
        rule("session-fixation-cookie", Kind::SessionFixation, Critical, 1, View::Low, args, r"\.cookie\b[^;]*;\s*(?:expires|domain|path)\s*=|\bhttp-equiv\W+set-cookie\b|\.cookie\s*=[^;]*(?:sessionid|jsessionid|phpsessid|sid)\s*="),
    ]
}
