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
    let params = req.query.iter().chain(match &req.parsed_body {
        Body::Form(params) => params.as_slice(),
        _ => &[],
    });
    for p in params {
        let name = p.name.trim().to_ascii_lowercase();
        let v = p.value.trim_start().to_ascii_lowercase();
        let url = SCHEMES.iter().any(|s| v.starts_with(s));
        if url && RFI_NAMES.contains(&name.as_str()) {
            c.add(
                Kind::Rfi,
                "rfi-known-parameter",
                Critical,
                1,
                &format!("query:{}", short(&p.name)),
                &p.value,
                "",
            );
        }
    }
}
