//! Remote file inclusion, LDAP, XXE, NoSQL, template injection, CRLF,
//! prototype pollution and session fixation signatures.

use super::targets::{ARGS, BODY, DOC, FILE, HEADERS, INPUT, NAMES, PATH, UA_REF};
use super::{Kind, Rule, Severity, View, rule};
use Severity::{Critical, Error, Warning};

/// The rules of the smaller families.
pub fn rules() -> Vec<Rule> {
    let args = ARGS | NAMES | BODY | DOC;
    vec![
        // Remote file inclusion and dangerous URL wrappers.
        rule("rfi-wrapper", Kind::Rfi, Critical, 1, View::Low, args | UA_REF, r"\b(?:php|expect|phar|zip|glob|data|ogg|rar|ssh2(?:\.\w+)?|zlib|compress\.(?:zlib|bzip2)|netdoc|gopher|dict|ldap|ldaps|tftp|jndi|local_file|rmi|iiop)://|\bjar:(?:https?|file|ftp):|\bfile:(?://)?/"),
        rule("rfi-include-url", Kind::Rfi, Critical, 1, View::Low, args, r#"\b(?:include|require)(?:_once)?\s*\(?\s*['"]?\s*(?:https?|ftps?)://"#),
        rule("rfi-url-trailing-question", Kind::Rfi, Error, 1, View::Low, ARGS, r"^(?:https?|ftps?)://[^?#\s]*\?+$|^(?:https?|ftps?)\?$"),
        rule("rfi-off-domain-url", Kind::Rfi, Warning, 2, View::Low, ARGS, r"^\s*(?:https?|ftps?)://"),
        // LDAP filter injection.
        rule("ldap-filter", Kind::Ldap, Critical, 1, View::Low, args, r"\)\s*\(\s*[|&!]|\)\s*\(\s*[\w.-]+\s*[~<>]?=|^\s*\*\s*\)\s*\(|[(|&!]\s*\(\s*(?:uid|cn|sn|ou|dc|objectclass|mail|givenname|samaccountname|userpassword|password|member|memberof|gidnumber|uidnumber|homedirectory|description)\s*[~<>]?=|\)\s*\(\s*\||\*\s*\)\s*\)\s*\("),
        rule("ldap-wildcard-close", Kind::Ldap, Error, 1, View::Low, args, r"^[^()]*\)\s*\(\s*\|?\s*$|\*\)\s*\(|\)\s*\(\s*&\s*\)|\)\s*\(\s*\|\s*\("),
        // XML external entities.
        rule("xxe-entity", Kind::Xxe, Critical, 1, View::Low, args | HEADERS | FILE, r"<!entity\b|<!doctype[^>\[]*\[|<!doctype\s+\w+\s+(?:system|public)\b|\bsystem\s+['\x22](?:file|https?|ftp|php|expect|jar|gopher|data|netdoc|dict|ldap)[:]|\bxi:include\b|\bxmlns:xi\s*=|<xsl:(?:value-of|copy-of|include|import)\b.*?(?:system-property|document\s*\(|unparsed-text)|<\?xml-stylesheet\b"),
        // NoSQL operators and ORM filter abuse.
        rule("nosql-operator-name", Kind::Nosql, Critical, 1, View::Low, NAMES, r"\[\s*\$(?:ne|eq|gt|gte|lt|lte|in|nin|regex|where|exists|or|and|nor|not|elemmatch|expr|type|size|all|mod|text|function|accumulator|jsonschema)\s*\]|^\$(?:ne|gt|gte|lt|lte|in|nin|regex|where|exists|or|and|nor|not|elemmatch|expr|function|accumulator|lookup|unionwith|merge|out|jsonschema|where)$"),
        rule("nosql-operator-value", Kind::Nosql, Critical, 1, View::Low, ARGS | BODY | DOC, r#"\{\s*['"]?\$(?:ne|gt|gte|lt|lte|where|regex|nin|in|or|nor|exists|expr|function)['"]?\s*:|\$where\b|\bthis\.\w+\s*(?:==|!=|===|\.match\s*\()|\bdb\.\w+\.(?:find|insert|update|remove|drop|aggregate|mapreduce)\s*\(|['"]\s*\|\|\s*['"]?\d['"]?\s*==\s*['"]?\d|['"]\s*&&\s*this\."#),
        rule("nosql-orm-lookup", Kind::Nosql, Critical, 1, View::Low, NAMES, r"^[a-z0-9]+(?:__[a-z0-9]+){2,}__(?:startswith|istartswith|endswith|iendswith|contains|icontains|regex|iregex|exact|iexact|gt|gte|lt|lte|in|isnull|range|search)$|^[a-z0-9_]+__(?:password|password_hash|secret|token|api_key|hash|salt)(?:__\w+)?$"),
        // Server-side template injection.
        rule("ssti-expression", Kind::Ssti, Critical, 1, View::Low, args | UA_REF, r#"\{\{[^}]*?(?:\d\s*[*+/-]\s*['"]?\d|__|config\b|self\b|request\b|lipsum|cycler|joiner|namespace|range\s*\(|popen|import|\bclass\b|mro|subclasses|globals|builtins|getattr|\|\s*(?:attr|safe|e|join|format|map)\b|constructor|\[\s*['"])[^}]*\}\}|\$\{[^}]*?(?:\d\s*[*+/-]\s*\d|runtime|exec\s*\(|\bclass\b|forname|getclass|java\.|\bt\s*\(|\bnew\s|request\.|session\.|application\.|param\.|@\w)[^}]*\}|#\{[^}]*?(?:\d\s*[*+/-]\s*\d|`|exec|system|%x|runtime|\bclass\b|require|process|open\s*\()[^}]*\}|<%=?\s*[^%]*?(?:\d\s*[*+/-]\s*\d|system|exec|`|eval|runtime|process|require|include|file\.|io\.|%x|\bif\b)[^%]*%>|\*\{[^}]*?(?:\bt\s*\(|java|runtime|\bnew\s)|__\$\{.*?\}__|\bfreemarker\.template\.utility\.execute\b|<#assign\b|\?new\s*\(\s*\)|#set\s*\(\s*\$|\$class\.inspect|\{\s*(?:system|exec|shell_exec|passthru)\s*\(|\{\$smarty\.|\{if\s+(?:system|exec|phpinfo)"#),
        rule("ssti-template-tag", Kind::Ssti, Error, 1, View::Low, args, r"\{%\s*(?:import|include|extends|set|for|macro|raw|debug|load|module|endfor)\b|\{\{\s*[a-z_]+\s*\.\s*[a-z_]+\s*\.\s*[a-z_]+|@\(\s*\d+\s*[*+]\s*\d+\s*\)|\{\{=\s*\d+\s*[*+]\s*\d+\s*\}\}"),
        // CRLF injection, response splitting, requests inside values.
        rule("crlf-header-injection", Kind::Crlf, Critical, 1, View::Low, ARGS | NAMES | BODY | HEADERS, r"\n\s*(?:set-cookie|content-(?:type|length|disposition|security-policy)|refresh|x-forwarded-[\w-]+|x-real-ip|remote-addr|transfer-encoding|access-control-allow-[\w-]+|x-xss-protection|location\s*:\s*(?:https?:|/))\s*:|\n\s*http/\d(?:\.\d)?\s+\d{3}\b"),
        rule("crlf-request-in-value", Kind::Crlf, Critical, 1, View::Low, ARGS | NAMES | BODY | HEADERS, r"\b(?:get|post|head|put|delete|options|trace|track|connect|patch|propfind|proppatch|mkcol|copy|move|lock|unlock)\s+(?:/|https?://)\S*\s+http/\d"),
        rule("crlf-in-name-or-path", Kind::Crlf, Critical, 1, View::Low, NAMES | PATH, r"\n"),
        rule("crlf-header-like", Kind::Crlf, Warning, 1, View::Low, ARGS, r"\n\s*[a-z][a-z-]{2,30}\s*:\s*\S"),
        // Prototype pollution.
        rule("prototype-pollution", Kind::PrototypePollution, Critical, 1, View::Low, INPUT | PATH, r"__proto__|\bconstructor\s*(?:\.|\[\s*['\x22]?)\s*prototype\b|\bprototype\s*\[\s*['\x22]?(?:__proto__|constructor)").plain(),
        // Session fixation.
        rule("session-fixation-cookie", Kind::SessionFixation, Critical, 1, View::Low, args, r"\.cookie\b.*?;\s*(?:expires|domain|path)\s*=|\bhttp-equiv\W+set-cookie\b|\.cookie\s*=.*?(?:sessionid|jsessionid|phpsessid|sid)\s*="),
    ]
}
