//! The fleet's namespace lab, for the fleet tests and `bench fleet`: NATS
//! servers with JetStream (each in a namespace of its own), hosts each
//! running a real `waf` daemon on its own interface, and an attacker, all
//! joined by a bridge in a "lan" namespace on 192.0.2.0/24. Everything
//! (daemons, servers and their stores, namespaces, pins) goes away on drop,
//! also when a test or a benchmark panics.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{Netns, TestDaemon, require_root, unique, veth};

/// Where the broker listens (its own namespace on the lab's bridge).
pub const BROKER4: &str = "192.0.2.250";
/// The attacker's address.
pub const ATTACKER4: &str = "192.0.2.66";
/// Every wait is bounded by this.
pub const WAIT: Duration = Duration::from_secs(10);
/// The first three hosts: node names and addresses.
pub const NODES: [(&str, &str); 3] = [("a", "192.0.2.1"), ("b", "192.0.2.2"), ("c", "192.0.2.3")];
/// Broker addresses of a three-server cluster.
pub const CLUSTER: [&str; 3] = ["192.0.2.250", "192.0.2.251", "192.0.2.252"];
/// Hosts a lab makes at most (their addresses stay below the attacker's).
pub const MAX_HOSTS: usize = 60;

/// Waits (at most [`WAIT`]) until `f` holds; panics naming `what` if not.
pub fn wait_until(what: &str, f: impl FnMut() -> bool) {
    wait_for(WAIT, what, f);
}

/// Waits at most `limit` until `f` holds; panics naming `what` if not.
pub fn wait_for(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < limit,
            "timed out ({limit:?}) waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Host `i`'s node name and address: a, b, c at 192.0.2.1-3, then `h3`,
/// `h4`, ... at 192.0.2.4 and up.
pub fn node(i: usize) -> (String, String) {
    assert!(i < MAX_HOSTS, "at most {MAX_HOSTS} hosts");
    match NODES.get(i) {
        Some((n, a)) => (n.to_string(), a.to_string()),
        None => (format!("h{i}"), format!("192.0.2.{}", i + 1)),
    }
}

/// A nats-server with JetStream in a namespace of its own; killed (and its
/// store removed) on drop.
pub struct Broker {
    child: Option<Child>,
    store: PathBuf,
    ns: String,
    addr: String,
    /// Cluster arguments (name, routes); empty for a lone server.
    cluster: Vec<String>,
}

impl Broker {
    /// Server `i` of `n` at `addrs[i]` (a lone server when `n` is 1, else a
    /// member of a cluster routed to the others).
    pub fn start(ns: &Netns, addrs: &[&str], i: usize) -> Self {
        let store = std::env::temp_dir().join(unique("waf-nats-"));
        std::fs::create_dir_all(&store).unwrap();
        let cluster = if addrs.len() > 1 {
            let routes: Vec<String> = addrs.iter().map(|a| format!("nats://{a}:6222")).collect();
            vec![
                "-n".into(),
                format!("s{i}"),
                "--cluster_name".into(),
                "waf-test".into(),
                "--cluster".into(),
                format!("nats://{}:6222", addrs[i]),
                "--routes".into(),
                routes.join(","),
                "-m".into(),
                "8222".into(),
            ]
        } else {
            Vec::new()
        };
        let mut b = Broker {
            child: None,
            store,
            ns: ns.name.clone(),
            addr: addrs[i].to_string(),
            cluster,
        };
        b.start_again();
        b
    }

    /// Kills the server (its store stays).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server (again) on its store and waits until it listens.
    pub fn start_again(&mut self) {
        let bin = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or_else(|| {
                panic!("nats-server is missing: run `cargo xtask setup` (it installs it)")
            });
        let store_arg = self.store.display().to_string();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, bin])
            .args(["-js", "-sd", &store_arg, "-a", &self.addr, "-p", "4222"])
            .args(&self.cluster)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let (ns, addr) = (self.ns.clone(), self.addr.clone());
        wait_until("nats-server to listen", || {
            crate::run_in(&ns, || {
                std::net::TcpStream::connect((addr.as_str(), 4222)).is_ok()
            })
        });
    }

    /// Whether the server process is running (not stopped).
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// The server's process id (`ip netns exec` execs it).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The namespace it runs in (a client reaches it from there).
    pub fn netns(&self) -> &str {
        &self.ns
    }

    /// Its client URL.
    pub fn url(&self) -> String {
        format!("nats://{}:4222", self.addr)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// The fleet's lab: hosts (a, b, c, ...; each a daemon on its own
/// interface), an attacker and the brokers, joined by a bridge in a "lan"
/// namespace. Fields drop in order: daemons, brokers, hosts, then the
/// bridge.
pub struct Fleet {
    /// The hosts' daemons, in host order.
    pub daemons: Vec<TestDaemon>,
    /// The NATS servers.
    pub brokers: Vec<Broker>,
    /// The attacker's namespace (at [`ATTACKER4`]).
    pub attacker: Netns,
    /// The bucket every host follows.
    pub bucket: String,
    /// The brokers' namespaces first, then the hosts'.
    hosts: Vec<Netns>,
    /// The hosts' node names, in host order.
    names: Vec<String>,
    /// `url = [...]` of every host's `[fleet]`.
    urls: String,
    /// The binary the daemons run (None: the debug build).
    bin: Option<PathBuf>,
    lan: Netns,
}

impl Fleet {
    /// Hosts a, b, c and one broker; `extra[i]`: more TOML for host i.
    pub fn new(extra: [&str; 3]) -> Self {
        Self::on_brokers(extra, &[BROKER4], "")
    }

    /// The lab with NATS servers at `brokers` (a cluster when more than
    /// one) and `fleet` more TOML for every host's `[fleet]`.
    pub fn on_brokers(extra: [&str; 3], brokers: &[&str], fleet: &str) -> Self {
        Self::build(&extra, brokers, fleet, None)
    }

    /// The lab with as many hosts as `extra` has (more TOML for each),
    /// NATS servers at `brokers`, `fleet` more TOML for every host's
    /// `[fleet]`, the daemons running `bin` (None: the debug build). Returns
    /// once every host follows the bucket.
    pub fn build(extra: &[&str], brokers: &[&str], fleet: &str, bin: Option<&Path>) -> Self {
        require_root();
        assert!(extra.len() <= MAX_HOSTS, "at most {MAX_HOSTS} hosts");
        let lan = Netns::new("fl");
        lan.exec(&["ip", "link", "add", "br0", "type", "bridge"]);
        lan.exec(&["ip", "link", "set", "br0", "up"]);
        let urls: Vec<String> = brokers
            .iter()
            .map(|a| format!("\"nats://{a}:4222\""))
            .collect();
        let attacker = Netns::new("fx");
        let mut f = Fleet {
            daemons: Vec::new(),
            brokers: Vec::new(),
            attacker,
            bucket: unique("waf-test-"),
            hosts: Vec::new(),
            names: Vec::new(),
            urls: urls.join(", "),
            bin: bin.map(Path::to_path_buf),
            lan,
        };
        f.plug(&f.attacker, ATTACKER4);
        for i in 0..brokers.len() {
            let broker_ns = Netns::new("fn");
            f.plug(&broker_ns, brokers[i]);
            f.brokers.push(Broker::start(&broker_ns, brokers, i));
            f.hosts.push(broker_ns);
        }
        let bucket = f.bucket.clone();
        for (i, more) in extra.iter().enumerate() {
            let (name, addr) = node(i);
            let toml = f.host_toml(more, &name, &bucket, fleet);
            let (ns, ifname) = f.new_host(&addr);
            let mut d = TestDaemon::configure_on(&ns, &ifname, &toml);
            d.bin = f.bin.clone();
            f.hosts.push(ns);
            if let Err(e) = d.try_spawn_here() {
                panic!("host {name}: {e}");
            }
            f.daemons.push(d);
            f.names.push(name);
        }
        for i in 0..f.daemons.len() {
            f.wait_following(i, WAIT);
        }
        f
    }

    /// Plugs namespace `ns` into the bridge at `addr`; returns its interface.
    fn plug(&self, ns: &Netns, addr: &str) -> String {
        let ifname = unique("f");
        let port = format!("p{ifname}");
        veth(&ifname, ns, &port, &self.lan);
        self.lan
            .exec(&["ip", "link", "set", &port, "master", "br0"]);
        ns.exec(&["ip", "addr", "add", &format!("{addr}/24"), "dev", &ifname]);
        ifname
    }

    fn new_host(&self, addr: &str) -> (Netns, String) {
        let ns = Netns::new("fh");
        let ifname = self.plug(&ns, addr);
        (ns, ifname)
    }

    /// A host's config: `extra`, then `[fleet]` for node `name` on `bucket`
    /// with `fleet` more keys.
    fn host_toml(&self, extra: &str, name: &str, bucket: &str, fleet: &str) -> String {
        format!(
            "{extra}\n[fleet]\nurl = [{}]\nnode = \"{name}\"\nbucket = \"{bucket}\"\n{fleet}\n",
            self.urls
        )
    }

    /// Adds a host at `addr` named `name` following `bucket` (any bucket
    /// on the lab's brokers), `extra` more TOML; starts its daemon and
    /// returns its index in [`Fleet::daemons`] and the instant just before
    /// the process was started. Returns once its API answers (it may not
    /// follow the bucket yet).
    pub fn add_host(
        &mut self,
        name: &str,
        addr: &str,
        extra: &str,
        bucket: &str,
    ) -> (usize, Instant) {
        let toml = self.host_toml(extra, name, bucket, "");
        let (ns, ifname) = self.new_host(addr);
        let mut d = TestDaemon::configure_on(&ns, &ifname, &toml);
        d.bin = self.bin.clone();
        self.hosts.push(ns);
        let started = Instant::now();
        if let Err(e) = d.try_spawn_here() {
            panic!("host {name}: {e}");
        }
        self.daemons.push(d);
        self.names.push(name.to_string());
        (self.daemons.len() - 1, started)
    }

    /// Waits (at most `limit`) until host `i` is connected and has read the
    /// bucket; panics with the logs if not.
    pub fn wait_following(&self, i: usize, limit: Duration) {
        let start = Instant::now();
        loop {
            let st = self.daemons[i].api("GET", "/v1/fleet", None).1;
            if st["connected"] == true && st["last_sync"].is_string() {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "host {} does not follow the bucket: {st}\n{}",
                self.names[i],
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The bucket's stream as a live cluster server reports it
    /// (`/jsz`): its leader's name and its number of replicas.
    pub fn stream(&self) -> Option<(String, usize)> {
        let want = format!("KV_{}", self.bucket);
        for (i, b) in self.brokers.iter().enumerate() {
            if !b.running() {
                continue;
            }
            let req = b"GET /jsz?accounts=true&streams=true&config=true HTTP/1.0\r\n\r\n";
            let dst = format!("{}:8222", b.addr);
            let Ok((200, body)) = crate::http_raw(&self.hosts[i], &dst, None, req, 1) else {
                continue;
            };
            let Some(json) = body
                .find('{')
                .and_then(|at| serde_json::from_str::<Value>(&body[at..]).ok())
            else {
                continue;
            };
            for acct in json["account_details"].as_array().into_iter().flatten() {
                for s in acct["stream_detail"].as_array().into_iter().flatten() {
                    if s["name"] == want.as_str() {
                        let leader = s["cluster"]["leader"].as_str()?.to_string();
                        let replicas = s["config"]["num_replicas"].as_u64()? as usize;
                        return Some((leader, replicas));
                    }
                }
            }
        }
        None
    }

    /// Whether the attacker's pings reach host `host` (one of the hosts
    /// the lab was built with).
    pub fn reaches(&self, host: usize) -> bool {
        self.attacker.ping(&node(host).1, None, 2)
    }

    /// Host `i`'s namespace.
    pub fn host_netns(&self, i: usize) -> &Netns {
        &self.hosts[self.brokers.len() + i]
    }

    /// Host `i`'s node name.
    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// Host `host`'s ban of the attacker, if any.
    pub fn ban_of(&self, host: usize) -> Option<Value> {
        let (code, b) = self.daemons[host].api("GET", &format!("/v1/bans/{ATTACKER4}"), None);
        (code == 200).then_some(b)
    }

    /// Packets host `host`'s XDP program dropped for a ban.
    pub fn xdp_banned_packets(&self, host: usize) -> u64 {
        self.daemons[host].api("GET", "/v1/stats", None).1["counters"]["banned"]["packets"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Every host's log, for failure messages.
    pub fn logs(&self) -> String {
        self.daemons
            .iter()
            .zip(&self.names)
            .map(|(d, n)| format!("---- host {n}:\n{}", d.log_text()))
            .collect()
    }
}
