//! Path traversal, local file access and restricted files.

use super::targets::{ARGS, BODY, DOC, FILENAME, HEADERS, INPUT, NAMES, PATH, UA_REF};
use super::{Kind, Rule, Severity, View, rule};
use Severity::{Critical, Error, Warning};

const K: Kind = Kind::Lfi;

/// Files and directories an application never needs a client to name.
/// `/` stands for any run of `/` or `\`.
const OS_FILES: &[&str] = &[
    "etc/passwd",
    "etc/shadow",
    "etc/group",
    "etc/gshadow",
    "etc/hosts",
    "etc/services",
    "etc/networks",
    "etc/protocols",
    "etc/issue",
    "etc/master.passwd",
    "etc/sudoers",
    "etc/crontab",
    "etc/fstab",
    "etc/mtab",
    "etc/profile",
    "etc/hostname",
    "etc/resolv.conf",
    "etc/motd",
    "etc/apache2/",
    "etc/httpd/",
    "etc/nginx/",
    "etc/mysql/",
    "etc/php",
    "etc/ssh/",
    "etc/security/",
    "etc/pam.d",
    "etc/subuid",
    "etc/subgid",
    "etc/os-release",
    "etc/environment",
    "etc/letsencrypt/",
    "etc/ssl/private",
    "etc/shells",
    "etc/inittab",
    "etc/init.d/",
    "etc/rc.local",
    "etc/bashrc",
    "etc/aliases",
    "etc/exports",
    "etc/network/",
    "etc/sysconfig/",
    "etc/kubernetes/",
    "etc/docker/",
    "etc/redis",
    "etc/postgresql/",
    "etc/tomcat",
    "etc/vsftpd",
    "etc/proftpd",
    "proc/self/",
    "proc/version",
    "proc/cpuinfo",
    "proc/meminfo",
    "proc/net/",
    "proc/sys/",
    "proc/mounts",
    "proc/cmdline",
    "proc/environ",
    "proc/thread-self/",
    "proc/1/",
    "proc/kcore",
    "sys/class",
    "proc/interrupts",
    "proc/partitions",
    "proc/modules",
    "proc/loadavg",
    "proc/stat",
    "proc/uptime",
    "sys/kernel/",
    "sys/power/",
    "sys/firmware/",
    "var/log/",
    "var/run/secrets",
    "var/lib/mysql",
    "var/mail/",
    "var/spool/cron",
    "var/www/",
    "usr/local/etc/",
    ".ssh/",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "authorized_keys",
    "known_hosts",
    ".bash_history",
    ".bash_profile",
    ".bash_logout",
    ".cshrc",
    ".tcshrc",
    ".login",
    ".forward",
    ".rhosts",
    ".shosts",
    ".profile",
    ".passwd",
    "master.passwd",
    ".bashrc",
    ".zsh_history",
    ".mysql_history",
    ".psql_history",
    ".sh_history",
    ".history",
    ".viminfo",
    ".lesshst",
    ".aws/",
    ".docker/",
    ".kube/config",
    ".git/",
    ".git-credentials",
    ".gitconfig",
    ".svn/",
    ".hg/",
    ".htaccess",
    ".htpasswd",
    ".npmrc",
    ".pgpass",
    ".netrc",
    ".my.cnf",
    ".env",
    ".gnupg/",
    ".azure/",
    ".config/gcloud",
    ".terraform",
    ".vault-token",
    "web.config",
    "wp-config.php",
    "localsettings.php",
    "configuration.php",
    "config.inc.php",
    "database.yml",
    "credentials.xml",
    // Settings and secrets of application frameworks (Spring, ASP.NET
    // Core, Django, Rails), and Docker's and Kubernetes' mounted secrets.
    "application.properties",
    "application.yml",
    "appsettings.json",
    "settings.py",
    "local_settings.py",
    "secrets.yml",
    "master.key",
    "run/secrets/",
    "boot.ini",
    "win.ini",
    "system.ini",
    "windows/system32",
    "winnt/system32",
    "system32/config/",
    "system32/drivers/etc",
    "inetpub/",
    "windows/repair",
    "windows/panther",
    "autoexec.bat",
    "php.ini",
    "my.ini",
    "httpd.conf",
    "nginx.conf",
    "tomcat-users.xml",
    // A Java application's private directories, read through a download
    // or include parameter.
    "web-inf/web.xml",
    "web-inf/classes/",
    "web-inf/lib/",
    "meta-inf/manifest.mf",
    "meta-inf/context.xml",
    "applicationhost.config",
    "shadow.bak",
    "passwd.bak",
    "dev/shm/",
    "dev/fd/",
    "root/",
    "home/",
];

/// Extensions of files no web client asks for (backups, data, config).
const RESTRICTED_EXT: &[&str] = &[
    "bak",
    "backup",
    "old",
    "orig",
    "save",
    "swp",
    "swo",
    "sql",
    "sqlite",
    "sqlite3",
    "db",
    "mdb",
    "dbf",
    "rdb",
    "ini",
    "log",
    "conf",
    "cfg",
    "config",
    "key",
    "pem",
    "env",
    "inc",
    "dll",
    "bat",
    "cmd",
    "vbs",
    "asa",
    "asax",
    "ascx",
    "cdx",
    "htr",
    "htw",
    "ida",
    "idc",
    "idq",
    "licx",
    "resources",
    "resx",
    "csproj",
    "vbproj",
    "pdb",
    "pol",
    "printer",
    "pwd",
    "pass",
    "passwd",
    "sys",
    "dos",
    "webinfo",
    "vsdisco",
    "xsx",
    "dump",
    "kdbx",
    "ovpn",
    "ppk",
    "p12",
    "pfx",
    "jks",
    "keystore",
    "htpasswd",
    "htaccess",
    "git",
    "svn",
];

/// Turns `etc/passwd` into a pattern with any slashes (either way) and
/// `./` segments between (`etc//./passwd`).
fn file_pattern(f: &str) -> String {
    let body: Vec<String> = f.split('/').map(regex::escape).collect();
    body.join(r"[/\\]+(?:\.[/\\]+)*")
}

/// The traversal and file access rules.
pub fn rules() -> Vec<Rule> {
    let (dot_files, plain_files): (Vec<&str>, Vec<&str>) =
        OS_FILES.iter().partition(|f| f.starts_with('.'));
    let plain_files: Vec<&str> = plain_files
        .into_iter()
        .filter(|f| *f != "root/" && *f != "home/")
        .collect();
    // Paths (`etc/passwd`) may follow a space or a quote; bare names
    // (`win.ini`, `nginx.conf`) only a slash or `=`, or stand alone: a
    // sentence that names a file ("my nginx.conf fails") reads no file.
    // After a slash, a bare name followed by a space and a word is a
    // longer name (`/win.ini editing tips`, a path segment with spaces),
    // not the file.
    let (path_files, name_files): (Vec<&str>, Vec<&str>) =
        plain_files.iter().partition(|f| f.contains('/'));
    let alt = |v: &[&str]| {
        v.iter()
            .map(|f| file_pattern(f))
            .collect::<Vec<_>>()
            .join("|")
    };
    let (path_alt, name_alt, dot_alt) = (alt(&path_files), alt(&name_files), alt(&dot_files));
    // A system directory and a name in it (`/proc/self/environ/x`,
    // `/etc/nginx/sites-enabled/default`): deeper than the file list goes
    // (not `/var/www/html/`: support forms and docs name the web root).
    let dirs: Vec<&str> = path_files
        .iter()
        .copied()
        .filter(|f| f.ends_with('/') && *f != "var/www/")
        .collect();
    let dir_alt = alt(&dirs);
    let exts = RESTRICTED_EXT.join("|");
    let t = INPUT | HEADERS | PATH;
    vec![
        rule(
            "lfi-traversal",
            K,
            Critical,
            1,
            View::Low,
            ARGS | NAMES | UA_REF | HEADERS | BODY | FILENAME | DOC,
            r"(?:\.{2,}[/\\]+(?:\.[/\\]+)*){2,}|(?:^|[/\\])\.{2,3}[/\\]+\.{2,3}(?:$|[/\\])|\.\.;|[/\\]\.\.$|(?:^|[=\s'\x22])\.\.\\",
        ),
        // An NTFS alternate data stream (`index.php::$DATA`): the script's
        // source instead of its output.
        rule(
            "lfi-ntfs-stream",
            K,
            Critical,
            1,
            View::Low,
            t | FILENAME,
            r"::\$(?:data|index_allocation|bitmap|attribute_list)\b",
        ),
        // A `../` that starts a path component: after a separator, the
        // value's start, an `=` or a quote, not after a space (`see
        // ../README for details` names a directory `see ..`).
        rule(
            "lfi-traversal-single",
            K,
            Warning,
            1,
            View::Low,
            ARGS | NAMES | HEADERS | BODY | DOC,
            r"(?:^|[/\\='\x22])\.{2,3}[/\\]",
        ),
        rule(
            "lfi-filename-traversal",
            K,
            Critical,
            1,
            View::Low,
            FILENAME,
            r"\.\.[/\\]|^[/\\]",
        ),
        rule(
            "lfi-path-traversal",
            K,
            Critical,
            1,
            View::Low,
            PATH,
            r"(?:^|[/\\])\.{2,3}(?:[/\\;]|$)|\.\.;|\\\.\.",
        ),
        rule(
            "lfi-encoded-traversal",
            K,
            Critical,
            1,
            View::Low,
            t,
            r"(?:0x2e|%2e|%u002e|%c0%ae|\.){2}(?:0x2f|0x5c|%2f|%5c|%u2215|%u2216|%c0%af|%c1%9c)|0x(?:2e|5c|2f)(?:0x(?:2e|5c|2f)|[./\\])|%(?:25)+2e%(?:25)+2e",
        )
        .plain(),
        rule(
            "lfi-os-file",
            K,
            Critical,
            1,
            View::Low,
            t,
            format!(
                r"(?:^|[/\\=:\s'\x22(;|&<>`])(?:\.{{0,3}}[/\\]+)?(?:{path_alt})(?:$|[\s/\\?#;&'\x22,)%.\x00-\x1f]|[\w.-]*$)|[/\\](?:{name_alt})(?:$|[/\\?#;&'\x22,)%.\x00-\x1f]|\s+(?:$|[^\w\s])|[\w.-]*$)|(?:^|=)(?:{name_alt})(?:$|[?#;&\x00])|(?:^|[/\\=\s'\x22~])(?:{dot_alt})(?:$|[\s/\\?#;&'\x22,)]|[\w.-]*$)|(?:^|[/\\=:\s'\x22(;|&<>`])(?:\.{{0,3}}[/\\]+)?(?:{dir_alt})[\w.-]+[/\\]|(?:^|[/\\=\s'\x22])(?:home[/\\]+[\w.-]+|root)[/\\]+\.[a-z]"
            ),
        )
        .plain(),
        // The same files spelled with shell tricks (`/et$@c/pas''swd`).
        rule(
            "lfi-os-file-shell",
            K,
            Critical,
            1,
            View::Cmd,
            ARGS | NAMES | UA_REF | BODY | DOC,
            format!(r"(?:^|[/\\=:\s;|&<>`])(?:\.{{0,3}}[/\\]+)?(?:{path_alt})(?:$|[\s/\\?#;&,)%.]|[\w.-]*$)|[/\\](?:{name_alt})(?:$|[/\\?#;&,)%.]|\s+(?:$|[^\w\s])|[\w.-]*$)|(?:^|=)(?:{name_alt})(?:$|[;&])"),
        ),
        // A value that is an absolute path into the system's directories:
        // no form field names one (`/etc/syslog.conf`, `/var/log/...`).
        rule(
            "lfi-system-path-value",
            K,
            Critical,
            1,
            View::Low,
            ARGS | NAMES | BODY | DOC,
            r"^\s*(?:file:/*)?/+(?:etc|proc|boot|sys|root|var/+(?:log|run|lib|spool|mail|backups|adm|db|cache)|usr/+local/+(?:etc|apache\d?|nginx)|opt/+lampp)/+[\w.-]+",
        ),
        // One step up to a script or configuration file (`../config.php`):
        // a relative link to a page or an asset does not look like that.
        rule(
            "lfi-traversal-to-script",
            K,
            Critical,
            1,
            View::Low,
            ARGS | NAMES | BODY | DOC | HEADERS,
            r"(?:^|[/\\=\s'\x22])\.\.[/\\]+(?:[\w.-]+[/\\]+)*[\w.-]*\.(?:php\d?|phtml|asp|aspx|jsp|jspx|cfm|cgi|pl|ini|conf|cfg|config|env|db|sqlite|sql|log|bak|passwd|htaccess|htpasswd|yml|yaml)(?:$|[\s?#;&\x00])",
        ),
        // Server logs (log poisoning): `apache/logs/access.log`.
        rule(
            "lfi-log-file",
            K,
            Critical,
            1,
            View::Low,
            ARGS | NAMES | BODY | DOC | HEADERS,
            r"(?:^|[/\\])(?:logs?|apache\d?|httpd|nginx|iis|w3svc\d*)[/\\]+(?:[\w.\s-]+[/\\]+)*(?:access|error)[._-]?log\b",
        ),
        // Windows system and server files by drive letter.
        rule(
            "lfi-windows-file",
            K,
            Critical,
            1,
            View::Low,
            ARGS | NAMES | BODY | DOC | HEADERS,
            r"\b[a-z]:[/\\]+(?:[\w\s.$-]+[/\\]+)*(?:system32|inetsrv|metabase\.xml|sam|repair|php\.ini|my\.ini|httpd\.conf|web\.config|ntuser\.dat)\b|\b[a-z]:[/\\]+(?:appserv|xampp|wamp\d*|program\s+files)\b",
        ),
        rule(
            "lfi-windows-path",
            K,
            Critical,
            1,
            View::Low,
            t,
            r"\b[a-z]:[/\\]+(?:windows|winnt|boot\.ini|inetpub|users[/\\]+\w+[/\\]+(?:ntuser|appdata)|documents\s+and\s+settings|programdata|system\s+volume\s+information)\b|\\\\(?:localhost|127\.0\.0\.1|[\w.-]+)\\(?:c\$|admin\$|ipc\$)",
        ),
        rule(
            "lfi-restricted-extension",
            K,
            Critical,
            1,
            View::Low,
            PATH,
            format!(
                r"[^/]\.(?:{exts})(?:$|[;~/])|\.(?:sql|db|bak|dump|backup)\.(?:zip|gz|tgz|tar|7z|rar|bz2|xz)$|\.\w+~(?:/|$)|/(?:\.?#[^/]*#|[^/]*\.(?:swp|swo))$"
            ),
        ),
        rule(
            "lfi-hidden-path",
            K,
            Critical,
            1,
            View::Low,
            PATH,
            r"/\.(?:env|git|svn|hg|bzr|cvs|htaccess|htpasswd|aws|ssh|docker|kube|npmrc|ds_store|idea|vscode|cursor\w*|aider\w*|zed|kiro|rovodev|opencode|plandex|n8n|junie|history|bash_history|bashrc|config|gnupg|azure|terraform|vault|netrc|pgpass|claude|windsurf\w*|continue|codeium|copilot\w*|gemini|github/workflows|circleci|travis|gitlab-ci|dockerenv|user\.ini|php_history|mysql_history|viminfo|lesshst|profile|zshrc|gitconfig|git-credentials|boto|s3cfg|pypirc|composer|yarnrc|bowerrc|editorconfig|sass-cache|aiignore|cursorignore|roo|cline|clinerules|codex|windsurfrules|mcp)\b|/@id/__x00__",
        ),
        // Places a server never serves to a client, or that hand out its
        // secrets, memory or code to whoever asks: a Java application's
        // private directories (the servlet container refuses them), Spring
        // Boot's actuators that show the environment, dump the heap or
        // threads, or run JMX (`health`, `info` and `prometheus`, which load
        // balancers and monitoring read, are not among them), Jolokia, and
        // ASP.NET's error and trace logs (every request's cookies), and
        // consoles that run code: JBoss's JMX and web consoles, and the
        // invoker and HTTP IL servlets that deserialize whatever object a
        // request body holds, Laravel's debug-mode Ignition.
        rule(
            "lfi-private-endpoint",
            K,
            Critical,
            1,
            View::Low,
            PATH,
            r"/(?:(?:web|meta)-inf\b|actuator/(?:env|heapdump|threaddump|dump|jolokia|gateway|configprops|logfile|httptrace|trace|mappings|beans|shutdown|restart|refresh|loggers|sessions|caches|conditions|auditevents|flyway|liquibase|scheduledtasks|integrationgraph)\b|jolokia/|(?:elmah|trace)\.axd\b|_ignition/execute-solution|(?:jmx|web)-console/|invoker/(?:(?:jmx|ejb)?invokerservlet|readonly)\b|jbossmq-httpil/)",
        ),
        // Pages that exist for the site's own operators (status and
        // information pages, profilers, database and application server
        // consoles: Tomcat's manager, Go's pprof, H2, Solr): a finding at
        // paranoia 1 (a site can serve them on purpose), blocking from 2.
        rule(
            "lfi-sensitive-name",
            K,
            Error,
            1,
            View::Low,
            PATH,
            r"/(?:wp-content/(?:debug|errors?)\.log|@fs/|phpinfo\.php|server-status|server-info|\.ds_store|cgi-bin/(?:test-cgi|printenv|php\d?)|_profiler/|adminer\.php|manager/html\b|debug/pprof\b|rails/info/|telescope/requests|h2-console\b|solr/admin/)",
        )
        .critical_from(2),
    ]
}
