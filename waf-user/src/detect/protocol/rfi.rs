//! Remote file inclusion through parameters that old applications are
//! known to include as code (CRS 931110): such a parameter holding a URL.

use crate::detect::collect::{Collector, short};
use crate::detect::kind::{Kind, Severity::Critical};
use crate::http::{Body, Request};

/// Parameter names of classic remote file inclusion holes (CRS 931110).
const RFI_NAMES: &[&str] = &[
    "mosconfig_absolute_path",
    "_conf[path]",
    "_server[document_root]",
    "gallery_basedir",
    "path[docroot]",
    "appserv_root",
    "config[root_dir]",
];

/// URL schemes an include follows.
const SCHEMES: &[&str] = &["http://", "https://", "ftp://", "ftps://", "file://"];

/// Remote file inclusion through parameters known to be included as code.
pub fn rfi_parameters(req: &Request, c: &mut Collector) {
    let form: &[_] = match &req.parsed_body {
        Body::Form(params) => params,
        _ => &[],
    };
    let params = (req.query.iter().map(|p| ("query", p))).chain(form.iter().map(|p| ("form", p)));
    // Compared in place, any ASCII case: nothing copied for each parameter.
    let starts_with = |v: &[u8], p: &str| {
        v.get(..p.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(p.as_bytes()))
    };
    for (kind, p) in params {
        let name = p.name.trim();
        let v = p.value.trim_start().as_bytes();
        if RFI_NAMES.iter().any(|n| name.eq_ignore_ascii_case(n))
            && SCHEMES.iter().any(|s| starts_with(v, s))
        {
            c.add(
                Kind::Rfi,
                "rfi-known-parameter",
                Critical,
                1,
                &format!("{kind}:{}", short(&p.name)),
                &p.value,
                "",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::collect::ExcludeFn;
    use crate::http::Limits;

    /// The locations `rfi_parameters` reports for a request's query and form.
    fn found(query: &str, form: &str) -> Vec<String> {
        let raw = format!(
            "POST /x?{query} HTTP/1.1\r\nHost: h\r\nContent-Type: \
             application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        );
        let req = Request::parse(raw.as_bytes(), &Limits::default()).unwrap();
        let none: &ExcludeFn = &|_, _, _| false;
        let mut c = Collector::new(1, none);
        rfi_parameters(&req, &mut c);
        c.finish().1.into_iter().map(|f| f.location).collect()
    }

    #[test]
    fn a_known_parameter_holding_a_url_in_any_case() {
        assert_eq!(
            found("mosConfig_absolute_path=HTTP://evil.example/x", ""),
            ["query:mosConfig_absolute_path"]
        );
        assert_eq!(
            found("a=1", "gallery_basedir=%20%20fTp://evil.example/"),
            ["form:gallery_basedir"]
        );
        assert_eq!(found("_conf%5Bpath%5D=file:///etc/passwd", "").len(), 1);
        // Another name, or no scheme at the start, or a scheme cut short.
        assert!(found("page=http://evil.example/", "").is_empty());
        assert!(found("appserv_root=see%20http://a.example", "").is_empty());
        assert!(found("appserv_root=http:/", "").is_empty());
        assert!(found("appserv_root=", "").is_empty());
    }
}
