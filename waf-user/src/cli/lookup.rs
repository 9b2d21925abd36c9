//! `waf lookup ADDR`: what every list, ban and source policy says of one
//! address, as the API's `GET /v1/lookup/{addr}` answers it.

use anyhow::{Result, anyhow};
use serde_json::Value;

use super::{ApiArgs, Client, encode, print, s};

/// Runs `waf lookup ADDR`.
pub fn lookup(a: &ApiArgs, addr: &str) -> Result<()> {
    let ip: std::net::IpAddr = addr
        .trim()
        .parse()
        .map_err(|_| anyhow!("`{addr}`: expected one IPv4 or IPv6 address"))?;
    let v: Value = Client::new(a)?.get(&format!("/v1/lookup/{}", encode(&ip.to_string())))?;
    print(a, &v, |v| {
        let or_none = |x: &Value, f: &dyn Fn(&Value) -> String| {
            if x.is_null() { "-".to_string() } else { f(x) }
        };
        let src = &v["sources"];
        let policy = &src["policy"];
        let mut lines = vec![
            format!("verdict:    {} ({})", s(v, "verdict"), s(v, "reason")),
            format!(
                "allowlist:  {}",
                or_none(&v["allowlist"], &|x| format!(
                    "{} ({})",
                    s(x, "cidr"),
                    s(x, "origin")
                ))
            ),
            format!(
                "blocklist:  {}",
                or_none(&v["blocklist"], &|x| format!(
                    "{} ({})",
                    s(x, "cidr"),
                    s(x, "origin")
                ))
            ),
            format!(
                "ban:        {}",
                or_none(&v["ban"], &|x| format!(
                    "{} ({})",
                    s(x, "net"),
                    s(x, "reason")
                ))
            ),
        ];
        if src.is_null() {
            lines.push("sources:    none configured".into());
        } else {
            lines.push(format!(
                "country:    {}",
                or_none(&src["country"], &|x| x.as_str().unwrap_or("-").into())
            ));
            lines.push(format!(
                "asn:        {}",
                or_none(&src["asn"], &|x| format!("AS{x} {}", s(src, "as_org")))
            ));
            let providers: Vec<&str> = src["providers"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            lines.push(format!(
                "cloud:      {}",
                if providers.is_empty() {
                    "-".into()
                } else {
                    providers.join(", ")
                }
            ));
            lines.push(format!("bogon:      {}", s(src, "bogon")));
            lines.push(format!(
                "policy:     {}",
                or_none(policy, &|p| format!(
                    "{} by {}{}{}",
                    s(p, "tag"),
                    s(p, "prefix"),
                    if p["monitor"].as_bool() == Some(true) {
                        " (monitor)"
                    } else {
                        ""
                    },
                    match p["only_on"].as_array() {
                        Some(i) if !i.is_empty() => format!(
                            " on {}",
                            i.iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        _ => String::new(),
                    }
                ))
            ));
        }
        lines.push(format!(
            "rate:       {}",
            or_none(&v["rate"], &|r| format!(
                "{} packets this second, {} the last, {} dropped",
                s(r, "window_packets"),
                s(r, "previous_packets"),
                s(r, "dropped")
            ))
        ));
        lines.join("\n")
    });
    Ok(())
}
