"""The soak's world (see `scripts/soak`): its settings, the counters every
thread shares, the Redis server and the ringrelay instances it restarts,
requests to them (signed as Twilio signs them), and the destinations' side:
the webhook receiver and the live-stream listeners.
"""

from __future__ import annotations
import base64
import collections
import dataclasses
import hashlib
import hmac
import http.client
import http.server
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.parse

# Test values only: the soak's own throw-away service.
ADMIN_TOKEN = "soak-admin-token-0123456789abcdef"
TWILIO_AUTH_TOKEN = "soak-twilio-auth-token"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the README's public test value
# One public URL for both instances, as behind a load balancer: every Twilio
# request is signed for it, whichever instance it is sent to.
PUBLIC_BASE_URL = "http://ringrelay.soak.test"
KEY_PREFIX = "soak"
ACCOUNT_SID = "AC" + "0" * 32

# How long a party keeps retrying one request before it gives up.
RETRY_BOUND_SECS = 10.0
# 5xx and connection failures are retried; anything else is an answer.
RETRYABLE_STATUSES = {500, 502, 503, 504}
# A device may send 30 ring reports a minute: each subscriber is used at
# most once per this many seconds (24 a minute, retries included).
SUBSCRIBER_MIN_INTERVAL_SECS = 2.5
SUBSCRIBERS_PER_CLIENT = 8
# Short enough that an unclaimed session expires within the settle period;
# the TTL long enough that no session vanishes before it is read back.
FORWARD_TIMEOUT_SECS = 15
SESSION_TTL_SECS = 3600

ENDED_STATES = {"connected", "voicemail", "missed", "cancelled", "expired"}
# The event the destinations get when a session ends in that state.
OUTCOME_EVENT = {
    "connected": "call.connected",
    "voicemail": "call.voicemail",
    "missed": "call.missed",
    "expired": "call.missed",
    "cancelled": "call.cancelled",
}
# What each kind of call in the mix should end as.
EXPECTED_STATE = {"answered": "connected", "voicemail": "voicemail", "hangs_up": "missed"}
CALL_MIX = [("answered", 0.7), ("voicemail", 0.2), ("hangs_up", 0.1)]
DESTINATIONS = ("desk", "laptop")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Where cargo puts it (CARGO_TARGET_DIR, when set, as scripts/bench reads it).
TARGET = os.path.abspath(os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target"))
BINARY = os.path.join(TARGET, "release", "ringrelay")


def log(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# ---------------------------------------------------------------------------
# Counters shared by every thread


class Counters:
    """Thread-safe counters: requests by (route, status), and named events."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: collections.Counter = collections.Counter()
        self.named: collections.Counter = collections.Counter()
        self.notes: dict[str, list[str]] = collections.defaultdict(list)

    def request(self, route: str, status) -> None:
        with self.lock:
            self.requests[(route, str(status))] += 1

    def add(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.named[name] += n

    def note(self, kind: str, text: str) -> None:
        """Keeps the first few examples of each kind of failure, for the report."""
        with self.lock:
            if len(self.notes[kind]) < 8:
                self.notes[kind].append(text)


COUNTERS = Counters()


# ---------------------------------------------------------------------------
# Redis and the two instances


class RedisServer:
    """redis-server with an append-only file, restartable on the same port
    and directory so that a restart keeps every key."""

    def __init__(self, work: str) -> None:
        self.port = free_port()
        self.dir = os.path.join(work, "redis")
        os.makedirs(self.dir)
        self.log_path = os.path.join(work, "redis.log")
        self.process: subprocess.Popen | None = None
        self.downtimes: list[float] = []

    def start(self) -> None:
        log_file = open(self.log_path, "a")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", self.dir, "--appendonly", "yes", "--appendfsync", "everysec",
             "--save", "", "--daemonize", "no"],
            stdout=log_file, stderr=subprocess.STDOUT)
        log_file.close()
        if not wait_until(self.answers, 10):
            raise RuntimeError(f"redis-server did not start on port {self.port}")

    def cli(self, *args: str, timeout: float = 10) -> str:
        done = subprocess.run(["redis-cli", "-p", str(self.port), *args],
                              capture_output=True, text=True, timeout=timeout)
        return done.stdout

    def answers(self) -> bool:
        try:
            return self.cli("PING", timeout=2).strip() == "PONG"
        except subprocess.TimeoutExpired:
            return False

    def stop(self) -> None:
        """SHUTDOWN flushes the append-only file, then the process exits."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            self.cli("SHUTDOWN", timeout=10)
        except subprocess.TimeoutExpired:
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self, down: float = 0.0) -> None:
        """Stops Redis, leaves it down `down` seconds (a restart that loads a
        large data set, a managed Redis's maintenance), starts it again."""
        began = time.monotonic()
        self.stop()
        time.sleep(down)
        self.start()
        self.downtimes.append(time.monotonic() - began)

    def keys(self, pattern: str) -> list[str]:
        out = self.cli("--scan", "--pattern", pattern, timeout=60)
        return [line for line in out.splitlines() if line]


class Instance:
    """One ringrelay process; SIGTERM and start again on the same port."""

    def __init__(self, name: str, work: str, redis_port: int) -> None:
        self.name = name
        self.port = free_port()
        self.work = work
        self.log_path = os.path.join(work, f"instance-{name}.log")
        self.process: subprocess.Popen | None = None
        self.env = self.environment(redis_port)
        self.downtimes: list[float] = []
        self.unclean_exits: list[int] = []

    def environment(self, redis_port: int) -> dict[str, str]:
        # Nothing of the caller's own ringrelay configuration leaks in.
        env = {k: v for k, v in os.environ.items()
               if k not in ("SUBSCRIBERS_FILE", "TEMPLATES_DIR", "PLIVO_AUTH_TOKEN",
                            "TRUST_PROXY", "NOTIFY_TIMEOUT_MS", "DEFAULT_REGION")}
        env.update({
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}",
            "REDIS_KEY_PREFIX": KEY_PREFIX,
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "TWILIO_AUTH_TOKEN": TWILIO_AUTH_TOKEN,
            "WEBHOOK_SECRET": WEBHOOK_SECRET,
            # The receiver listens on 127.0.0.1.
            "ALLOW_PRIVATE_WEBHOOKS": "true",
            "FORWARD_TIMEOUT_SECS": str(FORWARD_TIMEOUT_SECS),
            "SESSION_TTL_SECS": str(SESSION_TTL_SECS),
            "LOG_FORMAT": "json",
            "RUST_LOG": "info",
        })
        return env

    def start(self) -> None:
        log_file = open(self.log_path, "a")
        # The work directory as cwd: no .env of the checkout is read.
        self.process = subprocess.Popen([BINARY], env=self.env, cwd=self.work,
                                        stdout=log_file, stderr=subprocess.STDOUT)
        log_file.close()
        if not wait_until(self.healthy, 15):
            raise RuntimeError(f"instance {self.name} did not start; see {self.log_path}")

    def healthy(self) -> bool:
        try:
            status, _, _ = http_request(self.port, "GET", "/healthz", timeout=1)
            return status == 200
        except (OSError, http.client.HTTPException):
            return False

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM; the service finishes in-flight work (up to 10 s) and exits 0."""
        if not self.running():
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        if code != 0:
            self.unclean_exits.append(code)

    def restart(self) -> None:
        began = time.monotonic()
        self.stop()
        self.start()
        self.downtimes.append(time.monotonic() - began)


# ---------------------------------------------------------------------------
# HTTP with the retries the parties make


def http_request(port: int, method: str, path: str, body: bytes | None = None,
                 headers: dict | None = None, timeout: float = 5.0):
    """One request on a fresh connection (no keep-alive to go stale when an
    instance restarts). Raises OSError / HTTPException at the connection level."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace"), response
    finally:
        conn.close()


@dataclasses.dataclass
class Answer:
    status: int | None  # None: no answer at all (connection failures to the end)
    text: str
    attempts: int

    @property
    def gave_up(self) -> bool:
        return self.status is None or self.status in RETRYABLE_STATUSES


class Cluster:
    """The two instances behind one address: a request goes to the preferred
    one and, when it fails, to the other, back and forth, until the bound."""

    def __init__(self, instances: list[Instance]) -> None:
        self.instances = instances

    def send(self, route: str, method: str, path: str, body: bytes | None,
             headers: dict, prefer: int, bound: float = RETRY_BOUND_SECS) -> Answer:
        deadline = time.monotonic() + bound
        backoff = 0.1
        attempts = 0
        last = Answer(None, "", 0)
        while True:
            instance = self.instances[(prefer + attempts) % len(self.instances)]
            attempts += 1
            remaining = max(0.5, deadline - time.monotonic())
            try:
                status, text, _ = http_request(instance.port, method, path, body, headers,
                                               timeout=min(8.0, remaining))
                COUNTERS.request(route, status)
                last = Answer(status, text, attempts)
                if status not in RETRYABLE_STATUSES:
                    return last
            except (OSError, http.client.HTTPException) as err:
                COUNTERS.request(route, f"conn:{type(err).__name__}")
                last = Answer(None, str(err), attempts)
            if time.monotonic() + backoff > deadline:
                return last
            COUNTERS.add("retries")
            time.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    def admin(self, method: str, path: str, body: dict | None = None, prefer: int = 0) -> Answer:
        data = json.dumps(body).encode() if body is not None else None
        return self.send(f"{method} {path.split('/')[2]}", method, path, data,
                         {"Authorization": f"Bearer {ADMIN_TOKEN}",
                          "Content-Type": "application/json"}, prefer)


def twilio_signature(url: str, params: list[tuple[str, str]]) -> str:
    """X-Twilio-Signature: HMAC-SHA1 over the URL and the sorted name+value pairs."""
    data = url
    for name in sorted({n for n, _ in params}):
        for value in sorted({v for n, v in params if n == name}):
            data += name + value
    digest = hmac.new(TWILIO_AUTH_TOKEN.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def twilio_post(cluster: Cluster, path_and_query: str, params: list[tuple[str, str]],
                prefer: int) -> Answer:
    route = "twilio" + path_and_query.split("?")[0].removeprefix("/twilio")
    return cluster.send(route, "POST", path_and_query,
                        urllib.parse.urlencode(params).encode(),
                        {"X-Twilio-Signature": twilio_signature(PUBLIC_BASE_URL + path_and_query, params),
                         "Content-Type": "application/x-www-form-urlencoded"}, prefer)


def local_path(url: str) -> str:
    """The path and query of one of our absolute callback URLs."""
    if not url.startswith(PUBLIC_BASE_URL):
        raise ValueError(f"not under PUBLIC_BASE_URL: {url}")
    return url[len(PUBLIC_BASE_URL):]


def query_value(url: str, name: str) -> str | None:
    values = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get(name)
    return values[0] if values else None


# ---------------------------------------------------------------------------
# The destinations: a webhook receiver and live streams


class Receiver:
    """Receives every destination's webhooks on /hook/<subscriber>/<destination>,
    verifies the Standard Webhooks signature, and records the event types of
    each (session, destination)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.lock = threading.Lock()
        # (session id, subscriber, destination id) -> type -> set of webhook-ids
        self.events: dict[tuple, dict[str, set]] = collections.defaultdict(
            lambda: collections.defaultdict(set))
        self.seen_ids: set[tuple] = set()
        self.key = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"))
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                ok = receiver.accept(self.path, self.headers, body)
                self.send_response(204 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, subscriber: str, destination: str) -> str:
        return f"http://127.0.0.1:{self.port}/hook/{urllib.parse.quote(subscriber)}/{destination}"

    def verified(self, headers, body: bytes) -> bool:
        msg_id = headers.get("webhook-id") or ""
        timestamp = headers.get("webhook-timestamp") or ""
        signatures = headers.get("webhook-signature") or ""
        if not msg_id or not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
            return False
        mac = hmac.new(self.key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
        expected = "v1," + base64.b64encode(mac).decode()
        return any(hmac.compare_digest(expected, s) for s in signatures.split())

    def accept(self, path: str, headers, body: bytes) -> bool:
        parts = path.split("/")
        if len(parts) != 4 or parts[1] != "hook" or not self.verified(headers, body):
            COUNTERS.add("unverified webhooks")
            COUNTERS.note("unverified webhooks", f"{path} {headers.get('webhook-id')}")
            return False
        subscriber, destination = urllib.parse.unquote(parts[2]), parts[3]
        event = json.loads(body)
        session_id = event.get("data", {}).get("session_id")
        msg_id = headers["webhook-id"]
        with self.lock:
            if (msg_id, path) in self.seen_ids:
                # A retry of a delivery we already had (allowed: same id).
                COUNTERS.add("webhook redeliveries (same id)")
                return True
            self.seen_ids.add((msg_id, path))
            self.events[(session_id, subscriber, destination)][event["type"]].add(msg_id)
        return True

    def types(self, session_id: str, subscriber: str, destination: str) -> dict[str, int]:
        with self.lock:
            found = self.events.get((session_id, subscriber, destination), {})
            return {t: len(ids) for t, ids in found.items()}


class StreamListener(threading.Thread):
    """One destination's live event stream (SSE), reconnecting to the other
    instance whenever its instance goes away. Streams have no replay, so an
    event published while it reconnects is missed by design: its figures are
    information, not a pass/fail criterion."""

    def __init__(self, cluster: Cluster, subscriber: "Subscriber", destination: str,
                 stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.cluster, self.subscriber, self.destination, self.stop = cluster, subscriber, destination, stop
        self.lock = threading.Lock()
        self.seen: set[tuple[str, str]] = set()
        self.connects = 0

    def run(self) -> None:
        turn = 0
        while not self.stop.is_set():
            instance = self.cluster.instances[turn % 2]
            turn += 1
            try:
                self.listen(instance.port)
            except (OSError, http.client.HTTPException, ValueError):
                pass
            time.sleep(0.1)

    def listen(self, port: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        try:
            conn.request("GET", f"/v1/destinations/{self.destination}/events", headers={
                "Authorization": f"Bearer {self.subscriber.destination_tokens[self.destination]}",
                "Accept": "text/event-stream"})
            response = conn.getresponse()
            if response.status != 200:
                COUNTERS.request("GET events (stream)", response.status)
                time.sleep(0.5)
                return
            self.connects += 1
            kind = None
            while not self.stop.is_set():
                line = response.readline()
                if not line:
                    return
                line = line.decode().rstrip("\r\n")
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:") and kind:
                    data = json.loads(line[5:].strip())
                    session_id = data.get("data", {}).get("session_id")
                    with self.lock:
                        self.seen.add((session_id, kind))
                elif not line:
                    kind = None
        finally:
            conn.close()

    def has(self, session_id: str, kind: str) -> bool:
        with self.lock:
            return (session_id, kind) in self.seen
