//! Real Redis deployments for the tests: a `redis-server` of a test's own, a
//! Redis Cluster shared by every test of the binary, and a Sentinel-managed
//! primary with a replica per test.
//!
//! Every cluster or Sentinel server is started through a small shell that
//! kills it once the test binary is gone: the shared cluster lives in a
//! static, which is never dropped, and a test that panics must not leave
//! servers behind either.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

/// How long a deployment may take to get ready.
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// How long to wait between two looks at a condition.
const POLL_STEP: Duration = Duration::from_millis(50);

/// Polls `condition` until it holds, panicking with `what` after `deadline`.
pub fn wait_until(what: &str, deadline: Duration, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < deadline,
            "{what}: not within {deadline:?}"
        );
        std::thread::sleep(POLL_STEP);
    }
}

/// A port that is free, and (`with_bus`) whose cluster bus port, 10000
/// above, is free too.
fn free_port(with_bus: bool) -> u16 {
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if !with_bus {
            return port;
        }
        if port <= 55_535 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// A fresh folder for one server's files.
fn scratch_dir(name: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ringrelay-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `redis-server "$@"`, prints its pid, then watches this test binary:
/// once it is gone, kills the server and removes its folder.
const WATCHED: &str = r#"
redis-server "$@" >"$RR_DIR/log" 2>&1 &
server=$!
echo "$server"
while kill -0 "$RR_PARENT" 2>/dev/null; do sleep 1; done
kill -9 "$server" 2>/dev/null
rm -rf "$RR_DIR"
"#;

/// One `redis-server` (plain, cluster node or sentinel) on `port`.
pub struct Server {
    pub port: u16,
    pid: u32,
    dir: PathBuf,
    watcher: Mutex<Option<Child>>,
}

impl Server {
    /// Starts `redis-server` with `args` (its port among them) and returns
    /// once it answers PING.
    fn start(port: u16, dir: PathBuf, args: &[String]) -> Self {
        let mut watcher = Command::new("sh")
            .arg("-c")
            .arg(WATCHED)
            .arg("redis-server")
            .args(args)
            .env("RR_PARENT", std::process::id().to_string())
            .env("RR_DIR", &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh and redis-server are installed");
        let mut line = String::new();
        BufReader::new(watcher.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let pid = line.trim().parse().expect("the watcher prints the pid");
        let server = Self {
            port,
            pid,
            dir,
            watcher: Mutex::new(Some(watcher)),
        };
        let started = Instant::now();
        while !server
            .query::<String>(&redis::cmd("PING"))
            .is_ok_and(|p| p == "PONG")
        {
            assert!(
                started.elapsed() < READY_DEADLINE,
                "redis-server on {port} did not answer within {READY_DEADLINE:?}:\n{}",
                server.log()
            );
            std::thread::sleep(POLL_STEP);
        }
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// One command on a connection of its own, bounded in time.
    pub fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        let client = redis::Client::open(self.url())?;
        let mut connection = client.get_connection_with_timeout(Duration::from_millis(500))?;
        connection.set_read_timeout(Some(Duration::from_secs(2)))?;
        cmd.query(&mut connection)
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing
    /// answers; a hang, not a refusal.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen server go on (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    /// Kills the server (SIGKILL), as a crash would.
    pub fn kill(&self) {
        self.signal("-KILL");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} {}", self.pid);
    }

    /// What the server logged, for a failure message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Quietly: a test may have killed it already.
        let _ = Command::new("kill")
            .args(["-9", &self.pid.to_string()])
            .stderr(Stdio::null())
            .status();
        if let Some(mut watcher) = self.watcher.lock().unwrap().take() {
            let _ = watcher.kill();
            let _ = watcher.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn plain_args(port: u16, dir: &std::path::Path) -> Vec<String> {
    [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--dir",
        dir.to_str().unwrap(),
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// A `redis-server` of this test's own, stopped when dropped.
pub struct TestRedis {
    child: std::sync::Mutex<Option<Child>>,
    /// While stopped: the port, bound but not listening, so that it refuses
    /// connections as a stopped Redis does and no other test's server can
    /// take it meanwhile (which once answered for the stopped one).
    held_port: std::sync::Mutex<Option<socket2::Socket>>,
    port: u16,
}

impl TestRedis {
    pub fn start() -> Arc<Self> {
        let mut last_output = String::new();
        for _ in 0..5 {
            let port = free_port(false);
            match spawn_redis(port) {
                Ok(child) => {
                    return Arc::new(Self {
                        child: std::sync::Mutex::new(Some(child)),
                        held_port: std::sync::Mutex::new(None),
                        port,
                    });
                }
                Err(output) => last_output = output,
            }
        }
        panic!("could not start redis-server:\n{last_output}");
    }

    /// Stops the server and starts a new, empty one on the same port, as a
    /// Redis restart would.
    pub fn restart(&self) {
        self.stop();
        self.held_port.lock().unwrap().take();
        let child = spawn_redis(self.port).unwrap_or_else(|out| panic!("restart: {out}"));
        *self.child.lock().unwrap() = Some(child);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops the server, as an outage would.
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
            *self.held_port.lock().unwrap() = Some(hold_port(self.port));
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen server go on (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.lock().unwrap().as_ref().expect("running").id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal}");
    }

    /// A plain connection, to look at keys the way an operator would.
    pub async fn connection(&self) -> ::redis::aio::MultiplexedConnection {
        ::redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `port` bound without listening: connecting to it is refused.
fn hold_port(port: u16) -> socket2::Socket {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a socket");
    // The stopped server's connections may linger in TIME_WAIT.
    socket.set_reuse_address(true).expect("SO_REUSEADDR");
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    socket
        .bind(&address.into())
        .unwrap_or_else(|err| panic!("holding port {port}: {err}"));
    socket
}

/// A `redis-server` on `port`, once it says it accepts connections; what it
/// said when it did not.
fn spawn_redis(port: u16) -> Result<Child, String> {
    let mut child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is not installed: run scripts/test, which installs it");
    let stdout = child.stdout.take().expect("piped stdout");
    // Readiness is what redis-server says, not a guess at timing.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut said = String::new();
        let mut announced = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if !announced {
                said.push_str(&line);
                said.push('\n');
                if line.contains("Ready to accept connections") {
                    announced = true;
                    let _ = ready_tx.send(Ok(()));
                }
            }
        }
        if !announced {
            let _ = ready_tx.send(Err(said));
        }
    });
    let output = match ready_rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Ok(())) => return Ok(child),
        Ok(Err(output)) => output,
        Err(_) => "redis-server did not get ready within 20 s".into(),
    };
    let _ = child.kill();
    let _ = child.wait();
    Err(output)
}

/// A Redis Cluster of three masters (no replicas) on local ports.
pub struct TestRedisCluster {
    pub nodes: Vec<Server>,
}

impl TestRedisCluster {
    /// The cluster every test of this binary shares; each isolates itself
    /// by its key prefix.
    pub fn shared() -> &'static Self {
        static CLUSTER: LazyLock<TestRedisCluster> = LazyLock::new(TestRedisCluster::start);
        &CLUSTER
    }

    pub fn start() -> Self {
        let nodes: Vec<Server> = (0..3)
            .map(|_| {
                let port = free_port(true);
                let dir = scratch_dir("cluster");
                let mut args = plain_args(port, &dir);
                args.extend(
                    [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "2000",
                    ]
                    .map(str::to_owned),
                );
                Server::start(port, dir, &args)
            })
            .collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
            .arg("--cluster-yes")
            .output()
            .expect("redis-cli is installed");
        assert!(
            created.status.success(),
            "redis-cli --cluster create: {}{}",
            String::from_utf8_lossy(&created.stdout),
            String::from_utf8_lossy(&created.stderr)
        );
        let cluster = Self { nodes };
        wait_until("every node says cluster_state:ok", READY_DEADLINE, || {
            cluster.nodes.iter().all(|node| {
                node.query::<String>(redis::cmd("CLUSTER").arg("INFO"))
                    .is_ok_and(|info| info.contains("cluster_state:ok"))
            })
        });
        cluster
    }

    /// The seed URLs, as `REDIS_CLUSTER_URLS` lists them.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(Server::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The node that serves `key`.
    pub fn node_of(&self, key: &str) -> &Server {
        let slot: u16 = self.nodes[0]
            .query(redis::cmd("CLUSTER").arg("KEYSLOT").arg(key))
            .unwrap();
        let shards: Vec<Vec<redis::Value>> = self.nodes[0]
            .query(redis::cmd("CLUSTER").arg("SLOTS"))
            .unwrap();
        for shard in shards {
            let (from, to, port) = match &shard[..] {
                [
                    redis::Value::Int(from),
                    redis::Value::Int(to),
                    redis::Value::Array(master),
                    ..,
                ] => match &master[..] {
                    [_, redis::Value::Int(port), ..] => (*from, *to, *port),
                    _ => continue,
                },
                _ => continue,
            };
            if (from..=to).contains(&i64::from(slot)) {
                return self
                    .nodes
                    .iter()
                    .find(|n| i64::from(n.port) == port)
                    .expect("a node of ours");
            }
        }
        panic!("no node serves slot {slot}");
    }
}

/// The name the sentinels know the primary by.
pub const SENTINEL_MASTER: &str = "ringrelay-primary";

/// A primary, its replica, and a sentinel watching them (quorum 1, a
/// primary is down after two seconds), for one test. Not less: on a busy
/// machine a primary that answers a second late is failed over while alive,
/// and writes it had not yet passed to its replica are lost, as they would
/// be in production; a test then sees its own data vanish.
pub struct TestSentinel {
    /// The first primary and replica; after a failover their roles swap.
    pub servers: [Server; 2],
    pub sentinel: Server,
}

impl TestSentinel {
    pub fn start() -> Arc<Self> {
        let primary_port = free_port(false);
        let primary_dir = scratch_dir("primary");
        let primary = Server::start(
            primary_port,
            primary_dir.clone(),
            &plain_args(primary_port, &primary_dir),
        );
        let replica_port = free_port(false);
        let replica_dir = scratch_dir("replica");
        let mut args = plain_args(replica_port, &replica_dir);
        args.extend([
            "--replicaof".into(),
            "127.0.0.1".into(),
            primary_port.to_string(),
        ]);
        let replica = Server::start(replica_port, replica_dir, &args);
        let sentinel_port = free_port(false);
        let sentinel_dir = scratch_dir("sentinel");
        // A sentinel rewrites its configuration file, so it gets one of its own.
        let conf = sentinel_dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {sentinel_port}\nbind 127.0.0.1\ndir {dir}\n\
                 sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {primary_port} 1\n\
                 sentinel down-after-milliseconds {SENTINEL_MASTER} 2000\n\
                 sentinel failover-timeout {SENTINEL_MASTER} 3000\n\
                 sentinel parallel-syncs {SENTINEL_MASTER} 1\n",
                dir = sentinel_dir.display()
            ),
        )
        .unwrap();
        let sentinel = Server::start(
            sentinel_port,
            sentinel_dir,
            &[conf.to_str().unwrap().to_owned(), "--sentinel".into()],
        );
        let deployment = Self {
            servers: [primary, replica],
            sentinel,
        };
        // A failover needs a replica that is in sync and that the sentinel
        // knows of.
        wait_until("the replica in sync", READY_DEADLINE, || {
            deployment.servers[1]
                .query::<String>(redis::cmd("INFO").arg("replication"))
                .is_ok_and(|info| info.contains("master_link_status:up"))
        });
        wait_until("the sentinel knowing the replica", READY_DEADLINE, || {
            deployment
                .sentinel
                .query::<Vec<redis::Value>>(
                    redis::cmd("SENTINEL").arg("REPLICAS").arg(SENTINEL_MASTER),
                )
                .is_ok_and(|replicas| !replicas.is_empty())
        });
        Arc::new(deployment)
    }

    /// The port of the primary the sentinel names now.
    pub fn primary_port(&self) -> u16 {
        let (_, port): (String, u16) = self
            .sentinel
            .query(
                redis::cmd("SENTINEL")
                    .arg("GET-MASTER-ADDR-BY-NAME")
                    .arg(SENTINEL_MASTER),
            )
            .unwrap();
        port
    }

    /// The server that is the primary now.
    pub fn primary(&self) -> &Server {
        let port = self.primary_port();
        self.servers
            .iter()
            .find(|s| s.port == port)
            .expect("the primary is one of ours")
    }

    /// Waits until the sentinel names a primary other than the one on
    /// `old_port`, and that one says it is a primary.
    pub fn wait_for_new_primary(&self, old_port: u16, deadline: Duration) -> &Server {
        wait_until("the sentinel promoting the replica", deadline, || {
            self.sentinel
                .query::<(String, u16)>(
                    redis::cmd("SENTINEL")
                        .arg("GET-MASTER-ADDR-BY-NAME")
                        .arg(SENTINEL_MASTER),
                )
                .is_ok_and(|(_, port)| port != old_port)
        });
        let primary = self.primary();
        wait_until("the new primary taking writes", deadline, || {
            primary
                .query::<String>(redis::cmd("INFO").arg("replication"))
                .is_ok_and(|info| info.contains("role:master"))
        });
        primary
    }

    /// `REDIS_SENTINEL_URLS`.
    pub fn urls(&self) -> String {
        self.sentinel.url()
    }
}

/// A `redis-server` that speaks TLS, with a certificate this test made and
/// signed with a CA of its own: a certificate no public root vouches for,
/// as Heroku Redis's self-signed ones. Stopped when dropped.
pub struct TestTlsRedis {
    server: Server,
    tls_port: u16,
}

impl TestTlsRedis {
    pub fn start() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let server_key = KeyPair::generate().unwrap();
        let server_cert = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .unwrap()
            .signed_by(&server_key, &issuer)
            .unwrap();

        let dir = scratch_dir("tls");
        let write = |name: &str, pem: String| {
            let path = dir.join(name);
            std::fs::write(&path, pem).unwrap();
            path.to_str().unwrap().to_owned()
        };
        let cert = write("server.pem", server_cert.pem());
        let key = write("server.key", server_key.serialize_pem());
        let ca = write("ca.pem", ca_cert.pem());
        // A plain port too, for the readiness check.
        let (port, tls_port) = (free_port(false), free_port(false));
        let mut args = plain_args(port, &dir);
        args.extend(
            [
                "--tls-port",
                &tls_port.to_string(),
                "--tls-cert-file",
                &cert,
                "--tls-key-file",
                &key,
                "--tls-ca-cert-file",
                &ca,
                "--tls-auth-clients",
                "no",
            ]
            .map(str::to_owned),
        );
        Self {
            server: Server::start(port, dir, &args),
            tls_port,
        }
    }

    /// The `rediss://` URL of its TLS port.
    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.tls_port)
    }

    /// What the server logged, for a failure message.
    pub fn log(&self) -> String {
        self.server.log()
    }
}
