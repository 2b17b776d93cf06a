//! A connection per HTTP worker: [`PerWorker`].

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use redis::aio::ConnectionLike;
use redis::{RedisFuture, Value};
use thread_local::ThreadLocal;
use tokio::runtime::{Handle, RuntimeFlavor};

/// A connection (one server's, or a cluster's), and a connection of its own
/// for each thread that runs a runtime of its own (each actix HTTP worker
/// runs a current-thread runtime), so that a webhook's commands never leave
/// its worker's thread.
///
/// Why: a connection's driver is a task of the runtime that made it. On
/// the one shared connection, each command a worker sends crosses to the
/// main runtime's thread and its answer crosses back: two wake-ups of
/// another thread a round trip, which the profile of a new call showed
/// costing the service more than the round trip itself (BENCHMARKS.md).
/// Elsewhere (the main multi-thread runtime: the sweep, the bus, imports)
/// commands use the shared connection.
#[derive(Clone)]
pub(super) struct PerWorker<C: Send> {
    shared: C,
    workers: Arc<Workers<C>>,
}

/// What each thread's connection is made with, and the connections.
struct Workers<C: Send> {
    /// A connection that connects on first use (so on the thread using it).
    make: Box<dyn Fn() -> anyhow::Result<C> + Send + Sync>,
    local: ThreadLocal<RefCell<Option<Local<C>>>>,
}

/// A worker thread's connection, and whether the runtime it was made on
/// still runs: a thread may run one runtime after another (tests do), and a
/// connection whose driver went with its runtime would never answer.
struct Local<C> {
    connection: C,
    runtime_alive: Weak<()>,
}

impl<C: Clone + Send + 'static> PerWorker<C> {
    /// `make` configures each connection (lazy: it connects on first use).
    pub(super) fn new(
        make: impl Fn() -> anyhow::Result<C> + Send + Sync + 'static,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            shared: make()?,
            workers: Arc::new(Workers {
                make: Box::new(make),
                local: ThreadLocal::new(),
            }),
        })
    }

    /// The connection for a command sent from here.
    pub(super) fn connection(&self) -> C {
        let own_runtime = Handle::try_current()
            .is_ok_and(|handle| handle.runtime_flavor() == RuntimeFlavor::CurrentThread);
        if !own_runtime {
            return self.shared.clone();
        }
        let workers = &self.workers;
        let mut local = workers.local.get_or_default().borrow_mut();
        if let Some(local) = local
            .as_ref()
            .filter(|l| l.runtime_alive.strong_count() > 0)
        {
            return local.connection.clone();
        }
        // Made here, on this thread's runtime, the connection's tasks run
        // here. Configuring cannot fail where the shared one's did not.
        let Ok(connection) = (workers.make)() else {
            return self.shared.clone();
        };
        let alive = Arc::new(());
        *local = Some(Local {
            connection: connection.clone(),
            runtime_alive: Arc::downgrade(&alive),
        });
        // Dropped with the runtime's tasks when the runtime goes.
        tokio::spawn(async move {
            let _alive = alive;
            std::future::pending::<()>().await
        });
        connection
    }
}

impl<C: ConnectionLike + Clone + Send + Sync + 'static> ConnectionLike for PerWorker<C> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, Value> {
        let mut connection = self.connection();
        Box::pin(async move { connection.req_packed_command(cmd).await })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let mut connection = self.connection();
        Box::pin(async move { connection.req_packed_commands(cmd, offset, count).await })
    }

    fn get_db(&self) -> i64 {
        self.shared.get_db()
    }
}
