//! SQL injection signatures (besides the libinjection tokenizer, which runs
//! separately). Written for the `Sql` view: lowercase, comments removed.

use super::targets::{ARGS, HEADERS, INPUT, NAMES, PATH, UA_REF};
use super::{Kind, Rule, Severity, View, rule};
use Severity::{Critical, Error, Warning};

const K: Kind = Kind::Sqli;

/// SQL functions (MySQL, MSSQL, PostgreSQL, Oracle, SQLite).
const SQL_FUNCS: &str = "abs|acos|adddate|addtime|aes_decrypt|aes_encrypt|ascii|asin|atan|atan2|avg|benchmark|bin|bit_and|bit_count|bit_length|bit_or|bit_xor|cast|ceil|ceiling|char|char_length|character_length|charindex|chr|coalesce|collation|compress|concat|concat_ws|connection_id|conv|convert|convert_tz|cos|cot|count|crc32|curdate|current_date|current_time|current_timestamp|current_user|curtime|database|datalength|date_add|date_format|date_sub|datediff|day|dayname|dayofmonth|dayofweek|dayofyear|db_name|decode|degrees|des_decrypt|des_encrypt|elt|encode|encrypt|exp|export_set|extract|extractvalue|field|find_in_set|floor|format|found_rows|from_base64|from_days|from_unixtime|get_lock|getdate|greatest|group_concat|hex|host_name|if|ifnull|iif|inet_aton|inet_ntoa|instr|is_srvrolemember|isnull|json_extract|json_keys|last_insert_id|lcase|least|left|len|length|ln|load_file|local|localtime|locate|log|log10|log2|lower|lpad|ltrim|make_set|makedate|master_pos_wait|max|md5|mid|min|mod|month|monthname|name_const|now|nullif|nvl|object_id|oct|octet_length|old_password|ord|password|patindex|pg_sleep|pi|position|pow|power|quote|quotename|radians|rand|random|release_lock|repeat|replace|replicate|reverse|right|round|row_count|rpad|rtrim|schema|sec_to_time|session_user|sha|sha1|sha2|sign|sin|sleep|soundex|space|sqrt|std|stddev|str_to_date|strcmp|stuff|subdate|substr|substring|substring_index|subtime|sum|suser_name|sys_context|sysdate|system_user|tan|time|time_format|time_to_sec|timediff|timestamp|to_base64|to_char|to_days|to_number|trim|truncate|ucase|uncompress|unhex|unix_timestamp|updatexml|upper|user|user_name|utc_date|uuid|values|var_pop|variance|version|week|weekday|xmltype|year|yearweek|decode|ln|day|div|insert|default|minute|second|hour|quarter|date|json_extract|json_search|json_array|json_object|starts_with|overlay";

/// The SQL injection rules.
pub fn rules() -> Vec<Rule> {
    let t = INPUT | PATH;
    let th = t | HEADERS;
    // `sqli-number-condition`'s pieces: a number, a call, and a bound
    // of `between`.
    let num = r"(?:0x[0-9a-f]+|\d+\.?\d*(?:e[+-]?\d+)?|\.\d+)";
    let call = r"[a-z_]\w*\s*\([^()]{0,64}\)";
    let bound = format!(r"(?:-?\d[\d.]*|'[^']*'|0x[0-9a-f]+|{call})");
    vec![
        rule("sqli-union-select", K, Critical, 1, View::Sql, th, r#"\bunion(?:\s+(?:all|distinct|distinctrow))?[\s(]*select(?:\s+(?:all\s+|distinct\s+|distinctrow\s+|top\s+\d+\s+)?(?:\d|null\b|\*|@|'|"|`|\(|0x|char\b|concat|[\w.]+\s*(?:,|\(|\bfrom\b))|\s*\(|\s*$)|(?:[\d'"`)]|\bnull)\s*\bunion(?:\s+(?:all|distinct|distinctrow))?\s+table\s+[\w.`]+"#),
        rule("sqli-time-function", K, Critical, 1, View::Sql, th, r"\b(?:sleep|pg_sleep|benchmark)\s*\(\s*(?:\d[\w.]*\s*[),+\-*/]|[(@'`]|[a-z_]+\s*\()|\bbenchmark\s*\(\s*[\d\s.+\-*/]{1,40},\s*\w+\s*\(|\bselect\s+(?:pg_)?sleep\b|\bdbms_(?:pipe\.receive_message|lock\.sleep)\b|\bwaitfor\s+(?:delay|time)\s+['\d]"),
        rule("sqli-file-access", K, Critical, 1, View::Sql, t, r"\b(?:load_file\s*\(|into\s+(?:out|dump)file\b|load\s+data\s+(?:local\s+)?infile\b|lo_(?:import|export|get)\s*\(|pg_read_file\s*\(|utl_(?:http|inaddr|file)\.)"),
        rule("sqli-stored-procedure", K, Critical, 1, View::Sql, INPUT, r"\b(?:xp_(?:cmdshell|dirtree|regread|regwrite|fileexist|servicecontrol|availablemedia|subdirs|loginconfig|makecab|ntsec_enumdomains|terminate_process|execresultset)|sp_(?:oacreate|oamethod|executesql|makewebtask|configure|addextendedproc|password|addsrvrolemember|execute|prepare)|opendatasource|openrowset)\b").plain(),
        rule("sqli-schema-probe", K, Critical, 1, View::Sql, t, r"\b(?:information_schema|sysobjects|syscolumns|sys\.(?:objects|tables|columns|databases|sysprocesses)|pg_catalog|pg_shadow|pg_user|pg_database|mysql\.(?:user|db)|sqlite_(?:master|schema|temp_master)|all_tables|user_tables|dba_users|msysobjects|msysaccessobjects|msysqueries)\b").plain(),
        rule("sqli-error-function", K, Critical, 1, View::Sql, t, r"\b(?:extractvalue|updatexml|name_const|gtid_subset|xmltype|ctxsys\.drithsx\.sn|dbms_xmlgen\.getxml)\s*\(|\bexp\s*\(\s*~|\bconvert\s*\(\s*int\s*,"),
        rule("sqli-version-probe", K, Critical, 1, View::Sql, t, r"@@(?:version|datadir|hostname|basedir|servername|tmpdir|global\.)|\bversion\s*\(\s*\)\s*(?:[,)]|--|#|$)|\b(?:current_user|session_user|system_user|database|schema)\s*\(\s*\)\s*[,)]|\bselect\s+(?:(?:current_user|session_user|system_user|current_role|current_schema)\b|(?:user|version|database|schema|current_database|current_schema)\s*\(\s*\))"),
        rule("sqli-concat-function", K, Critical, 1, View::Sql, t, r"\b(?:group_concat|concat_ws)\s*\(|(?:^|[^.\w])concat\s*\(\s*(?:0x|char\s*\(|@@|\(select\b)|\bchar\s*\(\s*\d+\s*(?:,\s*\d+\s*){2,}\)|\b(?:unhex|hex)\s*\(\s*(?:version|user|database|@@)"),
        rule("sqli-tautology-number", K, Critical, 1, View::Sql, th, r"(?:['`)]|\d)\s*(?:or|and|xor|\|\||&&)\s+\(?\s*(\d+|'[^']*')\s*(?:=|<=>|!=|<>|>=?|<=?|like)\s*\(?\s*(?:\d+|'[^']*')"),
        // A number (decimal, with a fraction or exponent, or hex), then a
        // logical operator and a boolean literal that ends the value or the
        // condition (`1 or true`, `5) and not false--`, `1.0||true`):
        // the numeric-context tautology or contradiction of blind
        // injection. Prose goes on after the word (`top 10 and true
        // stories`).
        rule("sqli-number-boolean", K, Critical, 1, View::Sql, th, r"(?:^|[^\w.])(?:0x[0-9a-f]+|\d+(?:\.\d+)?(?:e[+-]?\d+)?)\s*\)*\s*(?:(?:or|and|xor)\s+|(?:\|\||&&)\s*)\(*\s*(?:not\s+)?(?:true|false)\s*\)*\s*(?:$|--|#|;|=|(?:or|and|xor)\b)"),
        // A number, a logical operator, and a condition on a column or a
        // value: a comparison with anything (a hex or bit literal
        // included), a string match (`like`, `glob`, `regexp`) with a
        // pattern, `in (`, `is null`, or a number or a call `between` two
        // numbers, strings or calls. Numeric parameters are where quotes
        // are not needed (`1 and password > 0x6d`, `0 or id>0`); anchored
        // at the start of the value, as such a parameter is, so prose that
        // has a number somewhere passes.
        rule(
            "sqli-number-condition",
            K,
            Critical,
            1,
            View::Sql,
            th,
            format!(r#"^[\s(~+-]*{num}(?:\s*(?:[-+*/%&|^]|\bdiv\b|\bmod\b)\s*[(~+-]*{num}\)*)*['"`]?\s*\)*\s*(?:(?:or|and|xor)(?:\s+|[`(])|(?:\|\||&&)\s*)\(*\s*(?:not\s+)?(?:(?:[a-z_`][\w.`$]*(?:\s*\([^()]{{0,64}}\))?|\d+|null)\s*(?:(?:collate\s+\w+\s*)?(?:=|<=>|!=|<>|>=?|<=?)\s*(?:0x[0-9a-f]|[xb]'|[\w'"`(@-])|(?:collate\s+\w+\s*)?(?:(?:not\s+)?(?:r?like|glob|ilike|regexp|sounds\s+like)(?:\s+binary)?|!?~\*?)\s*(?:['"`]|0x|[xb]')|(?:not\s+)?in\s*\(\s*[\d'"(]|is\s+(?:not\s+)?(?:null|true|false)\b)|(?:\d+|{call})\s*(?:not\s+)?between\s+{bound}\s+and\s+{bound})"#),
        ),

        rule("sqli-tautology-string", K, Critical, 1, View::Sql, t, r#"['"`]\s*\)*\s*(?:or|and|xor|\|\||&&)\s+\(*\s*['"][^'"]*['"]\s*(?:=|<=>|!=|<>|like|regexp)\s*['"]"#),
        rule("sqli-quote-boolean", K, Error, 1, View::Sql, t, r#"['`]\s*\)*\s*(?:or|and|xor|\|\||&&|div)\s+(?:not\s+)?(?:\d|true\b|false\b|null\b|exists\b|select\b|sleep\b|\(|@|[a-z_]+\s*\()"#),
        // A quote, then a comment that ends the value: the rest of the
        // query cut off (`admin'-- `, `x')#`).
        rule("sqli-quote-comment-end", K, Critical, 1, View::Sql, t, r#"^[\w.@-]*['"`]\s*\)*\s*(?:--[\s-]*|#\s*)$"#),
        // `';` ending a value counts as below: with an odd count of quotes.
        rule("sqli-quote-comment", K, Error, 1, View::Sql, t, r#"'\s*(?:[;)]\s*)*(?:--(?:\s|$)|#|;\s*--)|^[^']*(?:'[^']*'[^']*)*'\s*(?:[;)]\s*)*;\s*$"#),
        rule("sqli-quote-operator", K, Critical, 1, View::Sql, t, r"'\s*(?:=|<>|!=|<=>|\|\||&&|\^)\s*'|'\s*(?:like|rlike|regexp|sounds\s+like)\s*'|'\s*(?:collate|::)\s*\w"),
        rule("sqli-stacked-query", K, Critical, 1, View::Sql, th, r"(?:;|'|\))\s*(?:drop|truncate|alter|shutdown|create|grant|revoke)\s+(?:table|database|schema|user|login|procedure|function|view|index|trigger)\b|;\s*(?:exec(?:ute)?|declare)\s+[@(]|;\s*(?:insert\s+into|delete\s+from|update\s+[\w.`\x22\[\]]+\s+set)\b|;\s*select\s+(?:\*|@@|\w+\s*\(|null\b|\d)"),
        rule("sqli-statement", K, Critical, 1, View::Sql, th, r"\bselect\s+(?:top\s+\d+\s+)?(?:\*|count\s*\(|@@|null\s*,|\d+\s*,|[\w.]+\s*\(\s*[\w.*@]*\s*\)\s*(?:,|from\b))[^;]*?\bfrom\b|\binsert\s+into\s+[\w.`\x22\[\]]+\s*(?:\(|values\b|select\b)|\bdelete\s+from\s+[\w.`\x22\[\]]+\s+where\b|\bupdate\s+[\w.`\x22\[\]]+\s+set\s+[\w.`\x22]+\s*=|\bdrop\s+(?:table|database|schema)\s+(?:if\s+exists\s+)?[\w.`\x22\[\]]+"),
        // Column-count probes closed by a comment (`ORDER BY 3--`): the
        // comment is what the Sql view removes, so this reads Low.
        rule("sqli-order-probe-comment", K, Critical, 1, View::Low, t, r#"(?:^|[\s'"`)])(?:order|group)\s+by\s+\d+\s*(?:--|#|/\*)"#),
        // Reads of the catalog or of a DUAL table: no form field holds them.
        rule("sqli-select-system", K, Critical, 1, View::Sql, th, r"\bselect\b[^;]*?\bfrom\s+(?:dual\b|information_schema\b|mysql\s*\.\s*(?:user|db)\b|pg_(?:shadow|user|tables|catalog|database)\b|sys\s*\.\s*\w|sysobjects\b|syscolumns\b|sqlite_(?:master|schema)\b|all_(?:tables|users|tab_columns)\b|user_tables\b|master\s*\.\s*dbo\b|msysobjects\b)"),
        // Heavy functions used as delays (SQLite, MySQL).
        rule("sqli-heavy-function", K, Critical, 1, View::Sql, th, r"\brandomblob\s*\(\s*\d{6,}|\bbenchmark\s*\(\s*\d{5,}\s*,"),
        rule("sqli-order-probe", K, Error, 1, View::Sql, t, r"\b(?:order|group)\s+by\s+\d+\s*(?:--|#|/\*|;|$|,\s*\d)|\bhaving\s+\d+\s*=\s*\d+").critical_from(2),
        rule("sqli-quote-logic-predicate", K, Critical, 1, View::Sql, t, r"'\s*\)*\s*(?:or|and|xor|\|\||&&|div)\s+[\w.`]+\s+(?:is|like|in|between|not|regexp|rlike|glob|sounds)\b|'\s*(?:or|and|xor)\s+[\w.`]+\s*(?:=|<|>|!=|<>)"),
        rule("sqli-leading-ddl", K, Critical, 1, View::Sql, t, r#"^\s*[;'"`)]+\s*(?:drop|alter|truncate|create|rename|grant|revoke|shutdown|delete|update|insert)\b"#).unless(quoted_prose),
        rule("sqli-set-variable", K, Critical, 1, View::Sql, t, r"\bset\s+@@?[a-z_]\w*|\bselect\s+@@?[a-z_]\w*"),
        rule("sqli-logic-paren-assign", K, Error, 1, View::Sql, t, r"(?:&&|\|\|)\s*\(\s*\w+\s*=|\b(?:length|version|user|database)\s*(?:&&|\|\|)\s*\("),
        rule("sqli-mssql-exec", K, Critical, 1, View::Sql, t, r"\bexec(?:ute)?\s+(?:master\.|xp_|sp_|\(\s*@|@\w+)|\bdeclare\s+@\w+\s+(?:n?varchar|int|char|table|sysname)\b"),
        rule("sqli-pg-cast", K, Critical, 1, View::Sql, t, r"'\s*::\s*(?:int\w*|text|varchar|bigint|jsonb?|regclass|bytea|numeric|float\w*|bool\w*|oid|name)\b|'\s*(?:@>|<@|\?\||\?&|#>>?|->>?)\s*'"),
        // A quoted JSON document compared with a quoted JSON path
        // (`'{"a":2}' < '$.a' = 7`): MySQL and PostgreSQL read the
        // document, WAFs that know no JSON operators read two strings.
        rule("sqli-json-path-compare", K, Critical, 1, View::Sql, t, r"'\s*[\[{][^']*[\]}]\s*'\s*(?:[<>]=?|<>|!=|=)\s*'\s*\$[.\[]|'\s*\$[.\[][^']*'\s*(?:[<>]=?|<>|!=|=)\s*'\s*[\[{]"),
        rule("sqli-comment-evasion", K, Critical, 1, View::Low, t, r"/\*!\d*\s*(?:select|union|and|or|from|where|insert|update|delete|drop|sleep|benchmark|concat|\d)|\b(?:union|drop|insert|update|delete|alter|create|exec|truncate)\s*/\*|\bselect\s*/\*[^*]*\*/\s*(?:\w|\*)"),
        // Hex strings of printable bytes: SQL writes text so (`0x61646d696e`);
        // identifiers and hashes (`0xc026fadc0001137d`) are no text.
        rule("sqli-hex-blob", K, Warning, 1, View::Sql, t & !UA_REF, r"(?:=|\bin\s*\(|,|\s)\s*0x(?:[2-7][0-9a-f]){4,}\b"),
        rule("sqli-conditional", K, Error, 1, View::Sql, t, r"\b(?:if|iif)\s*\(\s*(?:\(?\s*select\b|\d+\s*[=<>]|ascii\s*\(|substr\w*\s*\(|length\s*\(|mid\s*\(|user\s*\(|database\s*\()|\bcase\s+when\s+[^;]*?\bthen\b[^;]*?\belse\b|\b(?:ascii|ord)\s*\(\s*(?:substr\w*|mid)\s*\("),
        rule("sqli-function-fragment", K, Critical, 1, View::Sql, t, format!(r"(?:^|[\s(,=|&;])(?:{SQL_FUNCS})\s*\(\s*$|^\s*[,;(]?\s*(?:{SQL_FUNCS})\s*\([^()]{{0,40}}\)\s*$")),
        rule("sqli-leading-quote-operator", K, Critical, 1, View::Sql, t, r#"^\s*['"`]+\s*\)*\s*(?:or|and|xor|\|\||&&|div|like|rlike|regexp|sounds\s+like|glob|not\s+(?:like|glob|regexp|between|in|null)|notnull|isnull|is\s+(?:not\s+)?null|between|collate|union|intersect|except|having|group\s+by|order\s+by|limit|procedure|into|where)(?:\s+[^\s'"`]|\s*[(@\d/]|\s*$)|^\s*['"`]+\s*\)*\s*(?:=|<|>|!=|<>|\^|\*|;)"#).unless(quoted_prose),
        rule("sqli-leading-operator", K, Error, 1, View::Sql, t, r#"^\s*\)*\s*(?:or|and|xor|&&|\|\|)\s+(?:\d|['"(@]|true\b|false\b|null\b|not\b|[\w.]+\s*(?:[=<>!]|like\b|is\b|in\s*\())"#),
        // A value that starts with a logical operator and goes on with a
        // comparison or a call: the tail of a WHERE clause.
        rule("sqli-leading-operator-compare", K, Critical, 1, View::Sql, t, r#"^\s*\)*\s*(?:or|and|xor|&&|\|\|)\s*\(*\s*(?:\d+|'[^']*'|"[^"]*"|null|[a-z_][\w.]*)\s*(?:={1,3}|<=>|!==?|<>|[<>]=?|\blike\b|\bis\b|\bin\s*\(|\bbetween\b|\bregexp\b|\brlike\b)|^\s*\)*\s*(?:or|and|xor)\s+[a-z_]\w*\s*\(|^\s*(?:or|and|xor)\s+\d+\s*$"#),
        // `x AND 1=1`, `x or 'a'='a'`: a logical word before a comparison of
        // two literals.
        rule("sqli-logic-literal-compare", K, Critical, 1, View::Sql, t, r#"\b(?:and|or|xor)\s+\(?\s*(?:\d+|'[^']*')\s*(?:=|<=>|!=|<>|>=?|<=?|\blike\b|\bsounds\s+like\b|\brlike\b|\bregexp\b)\s*\(?\s*(?:\d+|'[^']*')(?:\s*$|\s*[=)#;]|\s+(?:and|or|xor|--)\b|\s*--)|\bxor\s*(?:\d+|'[^']*')\s*(?:[<>=!-]|$)"#),
        // `x'is not-x--`, `a'or?--`: a quote glued to an SQL keyword, ending
        // in a comment.
        rule("sqli-quote-keyword-comment", K, Critical, 1, View::Sql, t, r#"['`"](?:is|not|or|and|xor|collate|like|glob|regexp|rlike|div|between|union|having|notnull|isnull)\b[^'\n]{0,60}(?:--|#)\s*$|'(?:or|and|xor|div)'\s*\d|"(?:or|and|xor|div)"\s*\d|`(?:or|and|xor|div)`\s*\d|['"`]\s*not\s+(?:like|rlike|regexp|glob|between)\s*['"`]"#),
        // `) AS alias FROM`: a select list cut in the middle.
        rule("sqli-alias-from", K, Critical, 1, View::Sql, t, r#"(?:[)`'"!;]|\b\d+)\s*as\s*(?:[`'"][^`'"]{0,40}[`'"]?|[a-z_]\w*)\s+from\b"#),
        // `FROM t WHERE x=`, `from `db`.`t` limit`: a clause fragment.
        rule("sqli-from-clause", K, Critical, 1, View::Sql, t, r#"^\s*from\s+[\w.`\x22\[\]]+\s+(?:where\s+[\w.`\x22]+\s*(?:[=<>!]|\blike\b|\bin\b)|group\s+by\b|order\s+by\b|limit\s*\d*\s*$|(?:inner\s+|left\s+|right\s+)?join\b)|`[\w$]+`\s*\.\s*`[\w$]+`"#),
        // PostgreSQL casts after an identifier or a call: `password::int`.
        rule("sqli-pg-cast-identifier", K, Critical, 1, View::Sql, t, r"(?:[a-z_]\w*|\))\s*::\s*(?:int[248]?|integer|bigint|smallint|text|varchar|char|numeric|decimal|double\s+precision|real|float[48]?|bool(?:ean)?|jsonb?|bytea|regclass|regproc|oid|inet|uuid|xml|money)\s*(?:$|[),;=<>|+*/-]|\b(?:from|and|or)\b)"),
        // `HAVING COUNT(x) > 5`, `procedure analyse(`, `limit 1,1--`.
        rule("sqli-clause-probe", K, Critical, 1, View::Sql, t, r"\bhaving\s+(?:count|sum|avg|min|max)\s*\(|\bhaving\s+\d+\s*[=<>]|\bprocedure\s+analyse\s*\(|(?:^|\)\s*|\d\s+)limit\s+\d+\s*(?:,\s*\d+)?\s*(?:--|#|;|$)|\blimit\s+\d+\s*,\s*\d+\s*(?:--|#|;)"),
        // Subqueries and row constructors: `=(select`, `values (1, 'x')`.
        rule("sqli-subquery", K, Critical, 1, View::Sql, t, r#"(?:[=(,]|\bin|\|\||['"]\s*\+)\s*\(\s*select\s*(?:$|[\w*@(])|(?:\binto\b[^;]{0,80}|\)\s*|\b(?:except|union|intersect)\s+)values\s*\(\s*(?:\d|'|"|null\b)"#),
        // Statements after a separator: `;drop`, `;update users`.
        rule("sqli-separator-statement", K, Critical, 1, View::Sql, t, r"(?:;|--)\s*(?:drop|alter|truncate|shutdown)\b|;\s*(?:update|delete\s+from|insert\s+into)\s+[\w.`]+\s*(?:$|;|--|#)|\bdrop\s+[\w.`]+\s*;\s*(?:--|#|$)"),
        // MySQL scientific-notation bypass: `1.e(ascii`, `1.e.tables`.
        rule("sqli-float-bypass", K, Critical, 1, View::Sql, t, r"\b\d+\.e(?:\(|\.[a-z_])"),
        // `if(1=1`, `select if(`, `case x when`: conditionals.
        rule("sqli-conditional-probe", K, Critical, 1, View::Sql, t, r"\bselect\s+(?:if|iif|case)\s*\(|\bif\s*\(\s*\d+\s*(?:=[^=]|=$|[<>])|\(\s*case\s+when\b|\bcase\s+\S+\s+when\s+\S+\s+then\b|\)\s*when\s+\d+\s+then\b"),
        // A quote, a logical word and a call or subquery.
        rule("sqli-quote-logic-call", K, Critical, 1, View::Sql, t, r#"['`"]\s*\)*\s*(?:or|and|xor|\|\||&&|div)(?:\s+|\(\s*)(?:not\s+)?(?:[a-z_]+\s*\(|\(\s*select\b|exists\s*\()|['"]\s*(?:or|and|xor)\s+(?:\d+|'[^']*')\s*(?:[<>=!]=?|<>)\s*$|\)\s*(?:like|rlike|regexp)\s*\(|\w\s+like\s+['"]\s*$"#),
        rule("sqli-statement-fragment", K, Critical, 1, View::Sql, th, r#"\bdelete\s+from\s+[\w.`\x22\[\]]+\s*(?:;|--|#|$)|\bcreate\s+(?:temporary\s+)?table\s+(?:if\s+not\s+exists\s+)?[\w.`\x22\[\]]+\s*(?:\(|$|as\b|select\b)|'\s*\?[|&]?\s*(?:'|array\b)|\bmsdb\b"#),
        // An SQL operator alone: counts only with other evidence.
        // Statement fragments too short to decide: count with other evidence.
        // Paranoia 3 blocks a value that is a SQL fragment or an operator
        // alone (`1=1`, `LIKE NULL`, `order by`): words of a query, but
        // also what a filter form or a spreadsheet cell may hold.
        rule("sqli-fragment-alone", K, Severity::Notice, 1, View::Sql, t, format!(r#"^\s*exec(?:ute)?\s+[\w.]+\s*$|^\s*(?:order|group)\s+by\s*$|^\s*(?:varchar|nvarchar|char|int|bigint)\s*$|\b(?:{SQL_FUNCS})\W{{0,3}}\(\s*$|(?:^|\s)(?:or|and|xor)\s*$|^\s*\d+\s*(?:=|!=|<>|<=>|\blike\b|\bis\s+not\b)\s*\d+\s*$"#)).critical_from(3),
        // A run of SQL and shell punctuation (`!@#$%^&*`, `@@@@@@`).
        rule("sqli-meta-run", K, Severity::Notice, 1, View::Low, ARGS | NAMES, r#"[~!@#$%^&*()\[\]|;'`<>]{6,}"#),
        rule("sqli-operator-alone", K, Severity::Notice, 1, View::Sql, t, r#"^\s*(?:<=>|<>|!=|>=|<=|>>|<<|\|\||&&|==|->>?|xor|div|rlike|regexp|sounds\s+like|(?:is|like)\s+(?:not\s+)?null|not\s+between|in\s*\(\s*[\w\s,'"+-]*\))\s*$"#).critical_from(3),
        // A quote, an operator and a comment ending the value; or `';`
        // ending a value of an odd count of quotes: the value closed the
        // application's string (`admin';`), where whole strings
        // (`x.innerHTML = 'hello';`) close none.
        rule("sqli-quote-tail-comment", K, Critical, 1, View::Sql, t, r"'\s*(?:\s|[-+*/%^<>=!|&~(])[^']{0,60}(?:--|#)[\s-]*$|^[^']*(?:'[^']*'[^']*)*';\s*$|\b(?:and|or|=|in)\s*\(\s*$"),
        rule("sqli-leading-keyword", K, Error, 1, View::Sql, t, r"^\s*;?\s*(?:select|union|insert|update|delete|create|grant)\s+[\w@*(`\x22]"),
        rule("sqli-leading-statement", K, Critical, 1, View::Sql, t, r#"^\s*[;'"`)]*\s*(?:drop\s+(?:table|database|schema|user|view|index|procedure|function|trigger|if)\b|truncate\s+table\b|alter\s+(?:table|database|user|login|session|system)\b|exec(?:ute)?\s*(?:$|master\b|xp_|sp_|@|\(|immediate\b)|declare\s+@|shutdown\s*(?:$|with\b|;|--)|waitfor\s+(?:delay|time)\b)|^\s*;\s*(?:select|union|insert|update|delete|create|set)\b"#),
        // PostgreSQL's COPY to or from a program: a shell command run by the
        // database (`1';copy (select '') to program 'id'--`).
        rule("sqli-copy-program", K, Critical, 1, View::Sql, t, r"\bcopy\s*\(\s*select\b[^;]*?\)\s*to\s+program\s*(?:'|\$|e')|\bcopy\s+[\w.\x22]+(?:\s*\([^)]*\))?\s+(?:to|from)\s+program\s*(?:'|\$|e')"),
        rule("sqli-db-identifier", K, Critical, 1, View::Sql, t, r"\b(?:nvarchar|tempdb|northwind|msdasql|sqloledb|dbms_\w+|utl_\w+|master\.\.\w+|db_name\s*\(|user_name\s*\(|is_srvrolemember|has_dbaccess|current_setting|pg_ls_dir|pg_read_binary_file|lo_import|sys_eval|sys_exec)\b").plain(),
        rule("sqli-identifier-name", K, Warning, 1, View::Sql, t, r"\b(?:schema_name|table_name|column_name|table_schema|column_schema)\b").plain(),
        rule("sqli-keyword-function", K, Warning, 2, View::Sql, t, r"\b(?:sleep|benchmark|extractvalue|updatexml|char|chr|ascii|concat|substring|substr|mid|version|database|user|load_file|count|sin|compress|round|coalesce|ifnull|nullif|cast|convert)\s*\("),
        rule("sqli-keyword", K, Warning, 2, View::Sql, t, r"\b(?:rlike|regexp|sounds\s+like|union\s+all|order\s+by|group\s+by|information_schema|schema_name|table_name|column_name|pg_catalog|sysobjects)\b").plain(),
        rule("sqli-select-from", K, Error, 2, View::Sql, t, r"\bselect\b[^;]{1,100}?\bfrom\b\s+[\w.`\x22\[\]]+(?:\s+where\b|\s*$|\s*(?:--|#|;))"),
        rule("sqli-quote-logic", K, Warning, 2, View::Sql, t, r#"['"`]\s*\)*\s*(?:or|and|xor|\|\||&&|div|like|between|rlike|regexp)\s+['"\w(@]"#),
        rule("sqli-nosql-sleep", K, Warning, 3, View::Sql, t, r";\s*sleep\s*\(|\bsleep\s*\("),
    ]
}

/// Words SQL reads as operators, clauses or literals after a break-out:
/// next to one of them, a bare word can be an operand.
const SQL_WORDS: &[&str] = &[
    "all",
    "and",
    "any",
    "as",
    "asc",
    "at",
    "between",
    "binary",
    "by",
    "case",
    "collate",
    "create",
    "cross",
    "data",
    "database",
    "delay",
    "delete",
    "desc",
    "distinct",
    "div",
    "drop",
    "else",
    "end",
    "escape",
    "exists",
    "false",
    "from",
    "glob",
    "group",
    "having",
    "if",
    "ilike",
    "in",
    "infile",
    "inner",
    "insert",
    "interval",
    "into",
    "is",
    "join",
    "like",
    "limit",
    "load",
    "member",
    "mod",
    "natural",
    "not",
    "null",
    "of",
    "offset",
    "on",
    "or",
    "order",
    "outer",
    "procedure",
    "regexp",
    "rlike",
    "schema",
    "similar",
    "some",
    "sounds",
    "table",
    "then",
    "time",
    "to",
    "true",
    "unknown",
    "update",
    "using",
    "when",
    "where",
    "xor",
    "zone",
];

/// Words that make a phrase SQL wherever they stand.
const SQL_STRONG: &[&str] = &[
    "benchmark",
    "declare",
    "dumpfile",
    "exec",
    "execute",
    "outfile",
    "select",
    "shutdown",
    "sleep",
    "truncate",
    "union",
    "waitfor",
];

/// A quoted phrase that starts with an SQL word (`"and when the kids are
/// old enough"`, `"into the wild"`, `"create" sterling gold`): only
/// letters, digits and spaces besides at most two quotes of one kind, no
/// word that makes it SQL anywhere, and two plain words in a row after the
/// first. After a break-out, SQL reads a bare word as an operand or an
/// alias; two in a row are neither outside a select list, and a select
/// list needs SELECT. Reads the Sql view (lowercase, comments gone).
pub(crate) fn quoted_prose(sql: &[u8]) -> bool {
    let s = sql.trim_ascii();
    let Some(&q) = s.first().filter(|q| matches!(q, b'\'' | b'"' | b'`')) else {
        return false;
    };
    let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b' ' || *b == q;
    if !s.iter().all(allowed) || s.iter().filter(|&&b| b == q).count() > 2 {
        return false;
    }
    let (mut pair, mut first) = (false, true);
    // A quote breaks a pair: the runs between quotes are read apart.
    for run in s.split(|&b| b == q) {
        let mut prev_plain = false;
        for word in run.split(|&b| b == b' ').filter(|w| !w.is_empty()) {
            // The SQL word the rule matched.
            if std::mem::take(&mut first) {
                continue;
            }
            let w = std::str::from_utf8(word).unwrap_or_default();
            if SQL_STRONG.contains(&w) {
                return false;
            }
            let plain = word.iter().all(u8::is_ascii_lowercase) && !SQL_WORDS.contains(&w);
            pair |= plain && prev_plain;
            prev_plain = plain;
        }
    }
    pair
}
