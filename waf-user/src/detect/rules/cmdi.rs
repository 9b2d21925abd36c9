//! OS command injection signatures, written for the `Cmd` view (lowercase,
//! shell quoting tricks removed).

use super::targets::{ARGS, BODY, DOC, FILENAME, HEADERS, INPUT, NAMES, PATH, UA_REF};
use super::{Kind, Rule, Severity, View, alt, rule};
use Severity::{Critical, Error};

const K: Kind = Kind::Cmdi;

/// Commands that are no English word: after any command separator they are
/// an attack even without arguments.
const STRONG: &[&str] = &[
    "aria2c",
    "lwp-download",
    "lwp-request",
    "msbuild",
    "msiexec",
    "installutil",
    "cmstp",
    "odbcconf",
    "smbclient",
    "sqlite3",
    "xterm",
    "mknod",
    "psql",
    "whoami",
    "uname",
    "ifconfig",
    "ipconfig",
    "netstat",
    "nslookup",
    "wget",
    "curl",
    "netcat",
    "ncat",
    "zsh",
    "ksh",
    "csh",
    "tcsh",
    "busybox",
    "powershell",
    "pwsh",
    "cmd.exe",
    "certutil",
    "bitsadmin",
    "wmic",
    "systeminfo",
    "tasklist",
    "taskkill",
    "useradd",
    "usermod",
    "userdel",
    "crontab",
    "chmod",
    "chown",
    "chgrp",
    "mkfifo",
    "socat",
    "nmap",
    "tcpdump",
    "python2",
    "python3",
    "xxd",
    "hexdump",
    "sysctl",
    "iptables",
    "modprobe",
    "insmod",
    "dmesg",
    "lsof",
    "getent",
    "traceroute",
    "tracert",
    "uptime",
    "printenv",
    "gawk",
    "nodejs",
    "jrunscript",
    "jjs",
    "msfvenom",
    "msfconsole",
    "setsid",
    "xargs",
    "chattr",
    "lsattr",
    "killall",
    "pkill",
    "iex",
    "iwr",
    "irm",
    "invoke-expression",
    "invoke-webrequest",
    "invoke-restmethod",
    "start-process",
    "new-object",
    "regedit",
    "rundll32",
    "regsvr32",
    "mshta",
    "cscript",
    "wscript",
    "schtasks",
    "netsh",
    "vssadmin",
    "icacls",
    "ansible",
    "ansible-console",
    "ansible-playbook",
    "chef-client",
    "kubectl",
    "lastlog",
    "strace",
    "ltrace",
    "openssl",
    "gunzip",
    "bzip2",
    "unxz",
    "base32",
    "sendmail",
    "systemctl",
    "journalctl",
    "fdisk",
    "mkfs",
    "losetup",
    "sudo",
    "passwd",
    "nohup",
    "base64",
    "telnet",
    "gdb",
    "visudo",
    "cscli",
    "pipx",
    "pip3",
    "aptitude",
    "apt-get",
    "ssh-copy-id",
    "ssh-keygen",
    "aa-disable",
    "aa-exec",
    "bsdtar",
    "cpulimit",
    "rmt-tar",
    "rmt-dump",
    "bcdboot",
    "bcdedit",
    "ansible-config",
    "ansible-doc",
    "ansible-galaxy",
    "ansible-inventory",
    "ansible-pull",
    "ansible-vault",
    "chef-shell",
    "chef-run",
    "chef-vault",
    "chef-solo",
    "chef-apply",
    "salt-call",
    "terraform",
    "runuser",
    "pkexec",
    "doas",
    "nsenter",
    "unshare",
    "capsh",
    "ngrok",
    "proxychains",
    "wmiexec",
    "psexec",
    "get-content",
    "set-content",
    "add-content",
    "remove-item",
    "copy-item",
    "get-childitem",
    "out-file",
];

/// Short or technical command names: an attack right after `;`, a backtick,
/// `$(`, `&&` or `||`; elsewhere they need an argument.
const MEDIUM: &[&str] = &[
    "bash", "sh", "dash", "python", "perl", "php", "ruby", "node", "java", "lua", "nc", "id", "ls",
    "ps", "pwd", "ip", "ssh", "scp", "sftp", "ftp", "tftp", "rsync", "ping", "dig", "hostname",
    "gcc", "cc", "awk", "sed", "env", "tee", "dd", "od", "rm", "mv", "cp", "kill", "docker", "tar",
    "zip", "unzip", "gzip", "xz", "7z", "vi", "vim", "nano", "whois", "arp", "reboot", "shutdown",
    "finger", "lsblk", "ifup", "ifdown", "chef", "puppet", "wsl", "cmd", "pip", "perf", "irb",
    "yum", "dnf", "apt", "rpm", "dpkg", "npm", "npx", "gem", "flock", "strace", "ltrace", "nohup",
    "apk",
];

/// Commands that are also English words: they need an argument that looks
/// like one (`-x`, a path, a variable, an IP address).
const WEAK: &[&str] = &[
    "cat", "more", "less", "head", "tail", "sort", "find", "grep", "egrep", "fgrep", "cut", "uniq",
    "wc", "echo", "printf", "type", "dir", "set", "export", "alias", "unset", "source", "eval",
    "exec", "sleep", "time", "date", "file", "stat", "touch", "ln", "mkdir", "rmdir", "cd", "df",
    "du", "free", "top", "watch", "which", "whereis", "locate", "man", "test", "read", "wait",
    "trap", "diff", "cmp", "paste", "join", "split", "shred", "install", "make", "patch", "tr",
    "look", "nice", "history", "copy", "del", "move", "ren", "start", "call", "findstr", "print",
    "wall", "who", "last", "host", "net", "sc", "reg", "mail", "batch", "service", "route",
    "column", "fold", "tac", "strings", "timeout", "expect", "ex", "ed", "nl", "rev", "mount",
    "halt", "lastb", "users", "groups", "ulimit", "chroot", "calc", "mspaint", "notepad",
];

/// The command injection rules.
pub fn rules() -> Vec<Rule> {
    let strong = alt(STRONG);
    let medium = alt(MEDIUM);
    let weak = alt(WEAK);
    let prefix = r"(?:(?:sudo|nohup|exec|time|env|command|builtin|setsid|strace|ltrace|nice|doas)\s+)?(?:(?:/usr)?(?:/local)?/s?bin/)?";
    // `python3.10`, `gcc7.4`: a version glued to a command name.
    let ver = r"(?:[\d.]*\d)?";
    let hard = r"(?:[;`]|\$\(|&&|\|\|)";
    let arg = r"(?:\s+(?:-{1,2}[a-z0-9]|[/~$\\]|\.{1,2}/|\d+\.\d+\.\d+\.\d+|%[a-z]|[a-z]:(?:[\\/\s]|$|\w))|\s*[<>])";
    let end = r"(?:$|[\s;|&<>`)(]|\.exe\b)";
    // A file of the working directory (`config.php`, `.env`, `web.config`)
    // ending the value or before another command or a redirect; prose goes
    // on after a file name (`; cat food.txt is attached`).
    let file = r"\s+(?:\.[a-z][\w.-]*|[\w-]+\.[a-z][a-z0-9]{0,5})\s*(?:$|[;|&<>`)])";
    // A package manager's `install`, unless all it installs is a local
    // requirements file or directory (`pip install -r requirements.txt`,
    // `pip install -e .`): no code the sender chose. A file fetched by
    // URL or from an absolute path still counts.
    let install =
        r"install(?:\s*$|\s+(?:[^-\s]|-[^re\s]|-[re]\S|-[re]\s+(?:[a-z][\w+.-]*:|[/~$\\]|\.\.)))";
    let t = ARGS | NAMES | UA_REF | BODY | DOC;
    vec![
        rule(
            "cmdi-separator-command",
            K,
            Critical,
            1,
            View::Cmd,
            t | FILENAME,
            format!(r"(?:[;|`\n&]|\$\(|\|\|)\s*{prefix}(?:{strong}){ver}{end}"),
        ),
        rule(
            "cmdi-hard-separator-command",
            K,
            Critical,
            1,
            View::Cmd,
            t | FILENAME,
            format!(
                r"{hard}\s*{prefix}(?:{medium}){ver}{end}|{hard}\s*{prefix}(?:{weak})(?:\.exe)?(?:\s*$|\s*[;|&`)]|\s+\d+(?:\.\d+)?\s*(?:$|[;|&`)])|{arg}|{file})|[|&\n]\s*{prefix}(?:{strong}|{medium}){ver}{file}|[|&]\s*{prefix}(?:{weak}){file}"
            ),
        ),
        rule(
            "cmdi-command-with-argument",
            K,
            Critical,
            1,
            View::Cmd,
            t,
            // A word that is also a command, at the start of a line of
            // text, is a command only if the rest of its line is a
            // command's: a traceback's `File "/app/x.py", line 3, in
            // <module>` goes on with commas.
            format!(
                r"(?:[|&]|^)\s*{prefix}(?:{strong}|{medium}|{weak}){ver}{arg}|\n\s*{prefix}(?:{strong}|{medium}){ver}{arg}|\n\s*{prefix}(?:{weak}){ver}{arg}[^\n,]*(?:\n|$)"
            ),
        ),
        // Paranoia 3: a value that starts with a command and any argument
        // (`time who`, `ls foo bar`): what a shell reads, and a sentence
        // that starts with such a word.
        rule(
            "cmdi-leading-command-strict",
            K,
            Critical,
            3,
            View::Cmd,
            ARGS | BODY | DOC,
            format!(r"^\s*{prefix}(?:{strong}|{medium}|{weak}){ver}\s+[\w./~$-]"),
        ),
        rule(
            "cmdi-shell-path",
            K,
            Critical,
            1,
            View::Cmd,
            t | HEADERS | PATH,
            r"(?:^|[\s;|&`(=:])/(?:usr/)?(?:local/)?s?bin/(?:[a-z0-9_-]+)|/dev/(?:tcp|udp)/|\b(?:ba|z|da|k)?sh\s+-[ic]\b|\bnc(?:at)?\s+(?:-[a-z]+\s+)*(?:-[elc]\s|\d+\.\d+\.\d+\.\d+\s+\d+)|\b(?:python[23]?|perl|ruby|php|node)\s+-[erc]\s|\bmkfifo\b|\|\s*(?:ba|z|da|k)?sh\b|\d?>&\s*\d|\bchmod\s+[+0-7]{3,4}\s|\bchmod\s+\+x\b|[;&|(]\s*\(\s*(?:ba|z|da|k)?sh\s*\)|/(?:tcp|udp)/[\w.-]+/\d+|(?:^|\s)!\s*(?:whoami|id|uname|ls|cat|sh|bash|curl|wget|nc)\b|;\s*at\s+\d{1,2}:\d{2}\b|(?:[a-z](?:\x22\x22|'')){2,}[a-z]",
        ),
        rule(
            "cmdi-substitution",
            K,
            Critical,
            1,
            View::Low,
            t,
            // `$'\151\144'`: a bash ANSI-C string spelled in octal.
            r"\$\{?ifs\b|\$\{[^}]*`|\$'[^']*?\\[0-7]{2,3}[^']*?\\[0-7]{2,3}",
        ),
        rule(
            "cmdi-shellshock",
            K,
            Critical,
            1,
            View::Low,
            t | HEADERS | PATH,
            r"^\s*\(\s*\)\s*\{|\(\s*\)\s*\{\s*(?::|_)\s*;\s*\}\s*;",
        ),
        rule(
            "cmdi-windows",
            K,
            Critical,
            1,
            View::Cmd,
            t,
            r"\bsc(?:\.exe)?\s+(?:create|config)\s+\S+\s+(?:[a-z]+=\s*\S+\s+)*binpath=|\bcmd(?:\.exe)?\s*/[ckr]\b|\bpowershell(?:\.exe)?\s+(?:-\w+\s+)*-(?:e|ec|enc|encodedcommand|c|command|nop|noprofile|w|windowstyle|exec|executionpolicy|ep)\b|\b(?:iex|invoke-expression)\s*[(\s]|\bnew-object\s+(?:system\.)?net\.webclient|\.download(?:string|file|data)\s*\(|\bcertutil(?:\.exe)?\s+-(?:urlcache|decode|encode|split)|\bbitsadmin\b[^|;&\n]*/transfer\b|\bwmic(?:\.exe)?\s+(?:process|os|shadowcopy|/node|useraccount|service)|\b(?:rundll32|regsvr32|mshta)(?:\.exe)?\s+\S|%(?:comspec|systemroot|windir|systemdrive|programfiles|appdata|userprofile|allusersprofile)%",
        ),
        rule(
            "cmdi-windows-for-if",
            K,
            Critical,
            1,
            View::Low,
            t,
            r#"\bfor\s+(?:/[dflr]\s+)*(?:"[^"]*"\s+|[^\s%]+\s+)?%%?~?[^\s%]*\s+in\s*\([^)]*\)\s*do\b|\bif\s*(?:/i\s+)?(?:not\s+)?(?:"[^"]*"|[^\s()"=]+)\s*==\s*(?:"[^"]*"|[^\s()"=]+)\s+[@\w]|\bif\s+(?:/i\s+)?(?:not\s+)?(?:exist|defined|errorlevel|cmdextversion)\s|\bif\s+(?:/i\s+)?(?:not\s+)?\S+\s+(?:equ|neq|lss|leq|gtr|geq)\s|\bif\s+(?:/i\s+)?(?:not\s+)?(?:"?%[^%\s]+%"?|\([^)]*\))\s*==|\bif\s+(?:/i\s+)?not\s+"[^"]*"\s*==\s*"|\bif\s+(?:/i\s+)?(?:not\s+)?(?:\[[^\]]*\]|\{[^}]*\}|\S*%\S*)\s*==|\bif\s+/i\s+\S+\s*==|\bif\s+not\s+\S+\s*===?\s*\S+\s+(?:echo|cmd|goto|call|set|exit)\b|\bif\s+\S+\s*==\s*\S+\s+(?:goto|call)\s"#,
        ),
        rule(
            "cmdi-fork-bomb",
            K,
            Critical,
            1,
            View::Low,
            t | HEADERS,
            r"\{\s*[\w:.]*\s*\|\s*[\w:.]*\s*&\s*\}|\balias\s+(?:[+-]\w+\s+)*[\w.-]+=|\(\s*\)\s*\{[^}]*[|&][^}]*\}\s*;|<\(\s*[a-z]+(?:\s|\))",
        ),
        rule(
            "cmdi-separator-option",
            K,
            Critical,
            1,
            View::Cmd,
            t,
            r"(?:[;`]|\$\(|&&|\|\|)\s*[a-z][\w.+-]*\s+-{1,2}[a-z][\w-]*",
        ),
        rule(
            "cmdi-leading-strong-command",
            K,
            Critical,
            1,
            View::Cmd,
            ARGS | UA_REF | BODY | DOC,
            format!(
                r"^\s*(?:sudo|nohup|exec|time|env|setsid|strace|ltrace|doas)\s+(?:{strong}|{medium}){ver}(?:$|\s)|^\s*(?:sudo|nohup|strace|ltrace|doas|flock\s+-\w+\s+\S+|cpulimit\s+(?:-\w+\s+\S+\s+)*)\s*(?:{weak})\s*$|^\s*(?:whoami|ifconfig|ipconfig|uname|netstat|systeminfo|tasklist|printenv|lsof|dmesg|getent|lastlog|visudo|cscli|ansible-[a-z]+|ansible\s+all|chef-[a-z]+)\s*(?:$|[;|&]|\s+\S)|^\s*{prefix}(?:{strong}){ver}\s+(?:-{{1,2}}[a-z]|[/$~]|\w+\s*[;|&])|^\s*{prefix}(?:{strong}|{medium}){ver}\s+(?:-{{1,2}}[a-z][\w-]*|{install}|[a-z][\w+.-]*://|(?:[\w-]+\.)+[a-z]{{2,}}(?:[/:\s]|$)|localhost\b|\d+\.\d+\.\d+\.\d+)|^\s*\\(?:{strong}|{medium})\s*$|(?:^|/)s?bin/(?:{strong}|{medium}|chef|ansible)\b|\{{,?(?:{strong}|{medium}|{weak}),|[a-z]\{{[a-z]+,[a-z]+\}}[a-z]|\becho\b[^|]*\|\s*\$?\{{?(?:{strong}|{medium}){ver}"
            ),
        )
        .plain(),
        rule(
            "cmdi-separator-wildcard",
            K,
            Critical,
            1,
            View::Cmd,
            t,
            r"(?:[;|`]|&&|\$\()\s*/[a-z?*]*[?*][a-z?*]*/",
        ),
        rule(
            "cmdi-wildcard-short-path",
            K,
            Critical,
            1,
            View::Cmd,
            t,
            r"(?:^|[\s;|&`(])/[a-z?*]{0,4}[?*][a-z?*]{0,4}/[a-z?*]{0,4}[?*][a-z?*]{0,4}(?:\s|$|/)|\b[a-z]+\s+/[a-z?*]*[?*][a-z?*]*/[a-z?*]*[?*][a-z?*]*(?:\s|$)",
        ),
        // Command substitution around a command and its arguments:
        // `$(printf ...)`, `$(cat /x)`, `$(id)`.
        rule(
            "cmdi-substitution-command",
            K,
            Critical,
            1,
            View::Cmd,
            t | FILENAME,
            format!(r"\$\(\s*{prefix}(?:{strong}|{medium}|{weak}){ver}(?:\s|\)|$)"),
        ),
        // A pipe into a reconnaissance command at the end of a value, after
        // something no list of words ends with (`a)|id`, `x.html|id|`).
        rule(
            "cmdi-pipe-recon",
            K,
            Critical,
            1,
            View::Cmd,
            t | FILENAME,
            r"(?:^|[)'\x22`\]]|\.[a-z]{2,4}|\b\d{1,3}(?:\.\d{1,3}){3})\s*(?:\|\|?|&&?)\s*(?:(?:/?usr)?/?bin/)?(?:id|whoami|uname|pwd|ls|dir|ifconfig|ipconfig|hostname|ver|set|env|ps|netstat)\s*(?:$|[|;&`])|^\s*[|&;]\s*sleep\s+\d+\s*(?:$|[;|&`])|(?:\|\|?|;|\n|&&?)\s*sleep\s+\d+(?:\.\d+)?\s*(?:$|[;|&`#\n])",
        ),
        // Windows account and share commands: `| net user x /add`.
        rule(
            "cmdi-windows-net",
            K,
            Critical,
            1,
            View::Low,
            t,
            r"(?:[;|&`\n]|^)\s*net1?(?:\.exe)?\s+(?:user|localgroup|group|share|use|accounts|session)\b[^\n]*(?:/(?:add|delete|domain|active)\b|\badministrators\b)|\bnet1?\s+localgroup\s+administrators\b|[;|&`\n]\s*net1?(?:\.exe)?\s+(?:view|user|localgroup|group|share|use|accounts|session|start|stop|config)\b|(?:[;|&`\n]|^)\s*reg(?:\.exe)?\s+(?:add|delete|query|save|export|import|load)\s+\x22?(?:hk(?:lm|cu|cr|u|cc)|hkey_)",
        ),
        // Globs short enough to stand for system paths (`/???/??t`,
        // `/e?c/?asswd`): a URL's query (`/vpc/conn?fromnav`) is longer.
        rule(
            "cmdi-wildcard-system-path",
            K,
            Critical,
            1,
            View::Cmd,
            t,
            r"(?:^|[\s;|&`(+])/(?:[a-z]{0,4}[?*][a-z?*]{0,4}/(?:[a-z]{0,6}[?*][a-z?*]{0,6}|[a-z]{1,6})|[a-z]{1,4}/[a-z]{0,6}[?*][a-z?*]{0,6})(?:[\s+]|$|/)",
        ),
        rule(
            "cmdi-wildcard-path",
            K,
            Error,
            1,
            View::Cmd,
            t,
            r"(?:^|[\s;|&`(])/(?:[a-z]*[?*][a-z?*]*|[a-z?*]+)/(?:[a-z?*]*[?*][a-z?*]*)(?:\s|$|/)|(?:^|[\s;|&`(])/\?{2,}/\?+",
        ),
        rule(
            "cmdi-reverse-shell",
            K,
            Critical,
            1,
            View::Low,
            INPUT | HEADERS,
            r"\bbash\s+-i\s+>&|\bsocket\.socket\s*\(|\bsocat\s+\S*exec:|\bsh\s+-i\s*[<>]|\b0<&\d+\s*-|\bexec\s+\d+<>/dev/tcp/|\btelnet\s+\S+\s+\d+\s*\|",
        ),
        rule(
            "cmdi-redirect-heredoc",
            K,
            Critical,
            1,
            View::Cmd,
            t,
            r"\w\s*<<<\s*\S|>\s*/(?:tmp|dev/null|var/www|etc)/|\|\s*(?:base64\s+-d|xxd\s+-r)|(?:^|[;|&])\s*\d?>>?\s*/(?:tmp|dev|var|etc|usr|home|root|opt)/",
        ),
        rule(
            "cmdi-parameter-expansion",
            K,
            Critical,
            1,
            View::Low,
            t | HEADERS,
            r"\$\{[a-z_]\w*(?:[#%]{1,2}|:[-=?+]|/)[^}\s]*\}|\$\(\(|\$\[[\w\s+*/%-]*\]|[<>]\(\s*[a-z]+(?:\s|\))|\$\{?shell\}?\s+-c\b|^\s*\$\{?[a-z_]\w*\}?\s+(?:-\w|[/$])|(?:[;&|`]|\$\()\s*\$\{?[a-z_]\w*\}?\s+(?:-\w|[\w/$])|(?:\$\{?[a-z_][a-z0-9_]{0,2}\}?){3,}(?:$|[^\w$])|(?:[;&|\n`]|\$\()\s*\$\{?0\}?(?:\s|<|$)|(?:^|[;&|\n`(])\s*\$\{?[a-z_]\w*\}?\$\{?[a-z_]\w*\}?(?:\s|$|[;&|<>])",
        ),
        rule(
            "cmdi-glob-class-path",
            K,
            Critical,
            1,
            View::Low,
            t,
            r"/[a-z0-9._-]*(?:[a-z0-9]\[[!^]?(?:[a-z]|[a-z0-9]-[a-z0-9])\]|\[[!^]?(?:[a-z]|[a-z0-9]-[a-z0-9])\][a-z0-9]|\[[!^][a-z0-9]{1,8}\][a-z0-9])",
        ),
        rule(
            "cmdi-tool-abuse",
            K,
            Critical,
            1,
            View::Cmd,
            t,
            r"(?:^|[;|&\n])\s*\.(?:shell|system|sh)\s+\S|[;|]\s*\.(?:databases|tables|dump)\b|-wrapper\s+[\w/]*(?:sh|bash|python\d?|perl)\b|\brm\s+-(?:rf|fr|r|f)\s+[/~.\w*]|\btrap\s+\S.*\b(?:exit|sig\w+)\s*$",
        ),
        // A command kept in a variable, then run as the variable alone
        // (`x=$'\x69\x64';$x`: the value's escapes are decoded before
        // rules run).
        rule(
            "cmdi-variable-command",
            K,
            Critical,
            1,
            View::Low,
            t,
            r"\b[a-z_]\w*=[^\s;&|\d]\S*?\s*[;&|\n]+\s*\$\{?[a-z_]\w*\}?\s*(?:$|[;&|`)])",
        ),
        // A value that starts with a pipe or a separator and a command
        // (`|id`, `& dir c:\`), or a command on a line of its own at the
        // end or before a separator (`1\nenv;`).
        rule(
            "cmdi-leading-separator",
            K,
            Critical,
            1,
            View::Cmd,
            t,
            format!(
                r"^\s*(?:\|\|?|&&?)\s*{prefix}(?:{strong}|{medium}){ver}{end}|^\s*(?:\|\|?|&&?)\s*{prefix}(?:{weak}){arg}|\n\s*{prefix}(?:{strong}|{medium}){ver}\s*(?:$|[;|&`])"
            ),
        ),
    ]
}

/// Whether `word` (lowercase) is a command name of the lists above, with
/// or without a version glued to it (`python3.10`).
pub fn is_command(word: &str) -> bool {
    let name = word.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    // A name that is all version (`3.10`) is none; `7z` keeps its digit.
    [word, name]
        .iter()
        .any(|w| !w.is_empty() && [STRONG, MEDIUM, WEAK].iter().any(|l| l.contains(w)))
}
