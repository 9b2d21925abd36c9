//! The tools object (`waf-tools`): the programs the daemon never attaches,
//! loaded apart from the firewall's object. `waf gen` runs its `waf_gen`
//! program; the benchmarks measure its floor (`waf_floor`) and reference
//! filter (`waf_reference`) next to the firewall.

use std::net::Ipv4Addr;

use aya::{
    Ebpf, EbpfLoader,
    maps::{Map, MapError},
    programs::{ProgramError, Xdp},
};
use ipnet::IpNet;
use waf_common::tools::{
    FLOOR_PROGRAM_NAME, REFERENCE_LPM_PROGRAM_NAME, REFERENCE_LPM4_MAP_NAME,
    REFERENCE_LPM6_MAP_NAME, REFERENCE_MAP_NAME, REFERENCE_PROGRAM_NAME,
};

/// The tools object built by build.rs from the waf-ebpf crate.
pub static TOOLS_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/waf-tools"));

/// What went wrong with the tools object, and what to check.
#[derive(Debug, thiserror::Error)]
pub enum ToolsError {
    /// The object could not be loaded (its maps could not be created).
    #[error("loading the tools object: {0} (it needs root, or CAP_BPF and CAP_NET_ADMIN)")]
    Load(#[from] aya::EbpfError),
    /// A program is not in the object: a build of mismatched halves.
    #[error("{0} is missing from the tools object: rebuild waf")]
    Missing(&'static str),
    /// The kernel refused a program (load, attach, test run).
    #[error("program {name}: {source}")]
    Program {
        /// The program.
        name: &'static str,
        /// What the kernel or aya said.
        source: ProgramError,
    },
    /// A map operation failed.
    #[error("map {name}: {source}")]
    Map {
        /// The map.
        name: &'static str,
        /// What the kernel or aya said.
        source: MapError,
    },
}

/// The loaded tools object. Its programs are loaded into the kernel on
/// first use.
pub struct Tools {
    ebpf: Ebpf,
}

impl Tools {
    /// Loads the embedded tools object: creates its maps (the generator's,
    /// and the reference filter's, which takes no memory until filled), no
    /// program yet.
    pub fn load() -> Result<Self, ToolsError> {
        Ok(Self {
            ebpf: EbpfLoader::new().load(TOOLS_OBJECT)?,
        })
    }

    /// The XDP program `name`, loaded into the kernel.
    pub fn program(&mut self, name: &'static str) -> Result<&mut Xdp, ToolsError> {
        let prog: &mut Xdp = self
            .ebpf
            .program_mut(name)
            .ok_or(ToolsError::Missing(name))?
            .try_into()
            .map_err(|source| ToolsError::Program { name, source })?;
        if prog.fd().is_err() {
            prog.load()
                .map_err(|source| ToolsError::Program { name, source })?;
        }
        Ok(prog)
    }

    /// The program `name` once [`Tools::program`] has loaded it.
    pub fn loaded(&self, name: &str) -> Option<&Xdp> {
        let prog: &Xdp = self.ebpf.program(name)?.try_into().ok()?;
        prog.fd().is_ok().then_some(prog)
    }

    /// Several programs, loaded, to use together (for example to hold them
    /// in the XDP dispatcher at once); in no particular order.
    pub fn programs(&mut self, names: &[&'static str]) -> Result<Vec<&mut Xdp>, ToolsError> {
        for name in names {
            self.program(name)?;
        }
        Ok(self
            .ebpf
            .programs_mut()
            .filter(|(name, _)| names.contains(name))
            .filter_map(|(_, p)| <&mut Xdp>::try_from(p).ok())
            .collect())
    }

    /// The benchmarks' floor: a program that only returns `XDP_DROP`.
    pub fn floor(&mut self) -> Result<&mut Xdp, ToolsError> {
        self.program(FLOOR_PROGRAM_NAME)
    }

    /// The benchmarks' reference filter: the textbook XDP ban filter, one
    /// hash lookup of the IPv4 source per packet (drop on a hit).
    pub fn reference(&mut self) -> Result<&mut Xdp, ToolsError> {
        self.program(REFERENCE_PROGRAM_NAME)
    }

    /// The textbook CIDR filter: one LPM trie lookup of the source per
    /// packet (drop on a hit).
    pub fn reference_lpm(&mut self) -> Result<&mut Xdp, ToolsError> {
        self.program(REFERENCE_LPM_PROGRAM_NAME)
    }

    /// Adds `net` to the textbook CIDR filter's trie of its family.
    pub fn reference_lpm_insert(&mut self, net: IpNet) -> Result<(), ToolsError> {
        use aya::maps::lpm_trie::{Key, LpmTrie};
        let bits = u32::from(net.prefix_len());
        match net {
            IpNet::V4(n) => {
                let name = REFERENCE_LPM4_MAP_NAME;
                let err = |source| ToolsError::Map { name, source };
                let map = self.ebpf.map_mut(name).ok_or(ToolsError::Missing(name))?;
                let mut t: LpmTrie<_, u32, u8> = LpmTrie::try_from(map).map_err(err)?;
                let key = Key::new(bits, u32::from_ne_bytes(n.network().octets()));
                t.insert(&key, 1, 0).map_err(err)
            }
            IpNet::V6(n) => {
                let name = REFERENCE_LPM6_MAP_NAME;
                let err = |source| ToolsError::Map { name, source };
                let map = self.ebpf.map_mut(name).ok_or(ToolsError::Missing(name))?;
                let mut t: LpmTrie<_, [u8; 16], u8> = LpmTrie::try_from(map).map_err(err)?;
                t.insert(&Key::new(bits, n.network().octets()), 1, 0)
                    .map_err(err)
            }
        }
    }

    /// Adds `addr` to the reference filter's map.
    pub fn reference_ban(&mut self, addr: Ipv4Addr) -> Result<(), ToolsError> {
        let name = REFERENCE_MAP_NAME;
        let err = |source| ToolsError::Map { name, source };
        let map = self.ebpf.map_mut(name).ok_or(ToolsError::Missing(name))?;
        let mut bans: aya::maps::HashMap<_, u32, u64> =
            aya::maps::HashMap::try_from(map).map_err(err)?;
        bans.insert(u32::from_ne_bytes(addr.octets()), 1, 0)
            .map_err(err)
    }

    /// Takes the map `name` out of the object, typed.
    pub fn take_map<T>(&mut self, name: &'static str) -> Result<T, ToolsError>
    where
        T: TryFrom<Map, Error = MapError>,
    {
        let map = self.ebpf.take_map(name).ok_or(ToolsError::Missing(name))?;
        T::try_from(map).map_err(|source| ToolsError::Map { name, source })
    }
}
