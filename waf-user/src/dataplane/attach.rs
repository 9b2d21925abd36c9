//! Attaching the program to interfaces and detaching it: the attach modes,
//! links pinned per interface (taken over atomically by the next run), the
//! interfaces pinned in a directory, and `waf detach`.

use std::{
    path::{Path, PathBuf},
    str::FromStr,
};

use aya::programs::{
    ProgramError, XdpMode,
    links::{FdLink, PinnedLink},
    xdp::XdpLink,
};

use super::{Dataplane, DataplaneError, Result, loader::remove_pinned_maps};

/// How to attach: let the kernel choose, or force driver or generic mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachMode {
    /// Native (driver) mode where the driver supports it, else generic.
    #[default]
    Auto,
    /// Native (driver) mode; fails where the driver has no XDP support.
    Native,
    /// Generic (skb) mode: works everywhere, slower.
    Skb,
}

impl AttachMode {
    fn xdp_mode(self) -> XdpMode {
        match self {
            Self::Auto => XdpMode::Default,
            Self::Native => XdpMode::Driver,
            Self::Skb => XdpMode::Skb,
        }
    }
}

impl FromStr for AttachMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "native" | "driver" => Ok(Self::Native),
            "skb" | "generic" => Ok(Self::Skb),
            _ => Err(format!(
                "unknown XDP mode `{s}`: expected auto, native or skb"
            )),
        }
    }
}

impl std::fmt::Display for AttachMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Native => "native",
            Self::Skb => "skb",
        })
    }
}

/// One attachment of the program to an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// Interface name.
    pub interface: String,
    /// The requested mode.
    pub mode: AttachMode,
    /// True when an existing pinned link was taken over (program replaced
    /// atomically, no gap in enforcement).
    pub adopted: bool,
}

impl Dataplane {
    /// Attaches to `interface`. With a pin directory the link is pinned (it
    /// stays attached after this process exits) and a link pinned there by a
    /// previous run is taken over by atomically replacing its program.
    pub fn attach(&mut self, interface: &str, mode: AttachMode) -> Result<Attachment> {
        if interface.contains('\0') {
            return Err(DataplaneError::Interface {
                interface: interface.into(),
                message: "name contains a NUL byte".into(),
            });
        }
        if nix::net::if_::if_nametoindex(interface).is_err() {
            return Err(DataplaneError::Interface {
                interface: interface.into(),
                message: "no such interface in this network namespace".into(),
            });
        }
        let pin_dir = self.pin_dir.clone();
        let prog = self.program()?;
        let mut adopted = false;
        match &pin_dir {
            Some(dir) => {
                let pin = link_pin_path(dir, interface);
                if pin.exists() {
                    let pinned = PinnedLink::from_pin(&pin).map_err(|e| DataplaneError::Bpffs {
                        path: pin.clone(),
                        message: format!("cannot open pinned link: {e}"),
                    })?;
                    let link = XdpLink::try_from(FdLink::from(pinned)).map_err(|e| {
                        DataplaneError::Bpffs {
                            path: pin.clone(),
                            message: format!("pinned object is not an XDP link: {e}"),
                        }
                    })?;
                    let id = prog.attach_to_link(link)?;
                    // The pin keeps the link; our handle may go.
                    drop(prog.take_link(id)?);
                    adopted = true;
                } else {
                    let id = prog
                        .attach(interface, mode.xdp_mode())
                        .map_err(|e| attach_err(interface, mode, e))?;
                    let link = prog.take_link(id)?;
                    let fd_link =
                        FdLink::try_from(link).map_err(|e| DataplaneError::Interface {
                            interface: interface.into(),
                            message: format!(
                                "the kernel attached through netlink, not a BPF link, so the \
                             attachment cannot be pinned: {e}"
                            ),
                        })?;
                    fd_link.pin(&pin).map_err(|e| DataplaneError::Bpffs {
                        path: pin.clone(),
                        message: format!("cannot pin the link: {e}"),
                    })?;
                }
            }
            None => {
                prog.attach(interface, mode.xdp_mode())
                    .map_err(|e| attach_err(interface, mode, e))?;
            }
        }
        let a = Attachment {
            interface: interface.into(),
            mode,
            adopted,
        };
        self.attachments.push(a.clone());
        Ok(a)
    }
}

fn attach_err(interface: &str, mode: AttachMode, e: ProgramError) -> DataplaneError {
    let hint = match mode {
        AttachMode::Native => {
            " (the driver may lack native XDP: try --xdp-mode auto or skb; another XDP program \
             may already be attached)"
        }
        _ => " (another XDP program may already be attached: see `ip link show`)",
    };
    DataplaneError::Interface {
        interface: interface.into(),
        message: format!("attach in {mode} mode failed: {e}{hint}"),
    }
}

/// Where the link of `interface` is pinned.
pub fn link_pin_path(dir: &Path, interface: &str) -> PathBuf {
    dir.join(format!("link_{interface}"))
}

/// Interfaces with a link pinned in `dir`.
pub fn pinned_interfaces(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("link_"))
                .map(str::to_string)
        })
        .collect();
    v.sort();
    v
}

/// Removes the pinned link of `interface` from `dir` (which detaches the
/// program from it once no process holds the link), and, when no other
/// interface remains, every pinned map and the directory itself. Returns
/// whether a link was pinned for that interface.
pub fn detach(dir: &Path, interface: &str) -> Result<bool> {
    let pin = link_pin_path(dir, interface);
    let had = pin.exists();
    if had {
        std::fs::remove_file(&pin).map_err(|source| DataplaneError::Io {
            path: pin.clone(),
            source,
        })?;
    }
    if pinned_interfaces(dir).is_empty() {
        remove_pinned_maps(dir)?;
    }
    Ok(had)
}
