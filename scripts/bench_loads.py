"""What scripts/bench's loads send, and its report (Python 3 standard library).

    bench_loads.py subscribers BASE RECEIVER_PORT WORK   register the bench's subscribers
    bench_loads.py calls URL WORK NAME COUNT [waiting]   signed /twilio/voice requests, each a new call
    bench_loads.py sample URL FILE COUNT                 post COUNT of FILE's requests, one at a time
    bench_loads.py monitor LOG... NAME COUNT             round trips and commands of a MONITOR sample
    bench_loads.py report WORK CONNECTIONS SECONDS       the table

A request file (one per wrk thread, `NAME.1.tsv` and `NAME.2.tsv`) holds a
form body and its X-Twilio-Signature a line, as Twilio signs them for URL;
`wrk-file.lua` posts each thread's file in turn.
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import sys
import urllib.parse

# The voice loads' subscribers: a forwarding number each, one phone.
VOICE_SUBSCRIBERS = 1000
# The ring load's: 3 webhook destinations each; many devices, so that the
# 30 reports a minute per device is not what is measured.
RING_SUBSCRIBERS = 1500
# The whole call's: 2 webhook destinations each (a desk phone, a softphone).
WHOLE_SUBSCRIBERS = 1500


# Area codes of callers (with exchange 555, 10,000 lines each).
AREAS = [201, 202, 203, 205, 206, 207, 208, 209, 210, 212, 213, 214, 215, 216, 217, 218, 219, 224,
         225, 228, 229, 231, 234, 239, 240, 248, 251, 252, 253, 254, 256, 260, 262, 267, 269, 270,
         272, 276, 281, 301, 302, 303, 304, 305, 307, 308, 309, 310, 312, 313, 314, 315, 316, 317,
         318, 319, 320, 321, 323, 325, 330, 331, 334, 336, 337, 339, 347, 351, 352, 360, 361, 385,
         386, 401, 402, 405, 406, 407, 408, 409, 410, 412, 413, 414, 415, 417, 419, 423, 424,
         425, 430, 432, 434, 435, 440, 442, 443, 458, 463]


def voice_subscriber(i):
    return f"+1404555{i:04d}", f"+1678555{i:04d}"


def sign(url, params):
    data = url + "".join(k + v for k, v in sorted(params))
    token = os.environ["TWILIO_AUTH_TOKEN"].encode()
    return base64.b64encode(hmac.new(token, data.encode(), hashlib.sha1).digest()).decode()


def resp(*words):
    """A command in Redis's protocol."""
    out = f"*{len(words)}\r\n".encode()
    for word in words:
        data = word.encode()
        out += f"${len(data)}\r\n".encode() + data + b"\r\n"
    return out


def subscribers(base, receiver_port, work):
    host = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(host.hostname, host.port)
    admin = os.environ["ADMIN_TOKEN"]

    def put(number, body):
        conn.request("PUT", f"/v1/subscribers/{number}", json.dumps(body),
                     {"Authorization": f"Bearer {admin}", "Content-Type": "application/json"})
        response = conn.getresponse()
        data = json.loads(response.read())
        assert response.status == 201, (response.status, data)
        return data["device_token"]

    desk = {"id": "desk", "kind": "phone", "address": "+12025550201"}
    # The voice loads' (and the Node reference's, as JSON in `ref:fw`,
    # written by `redis-cli --pipe`: RESP needs no quoting).
    with open(f"{work}/reference-subscribers.resp", "wb") as ref:
        for i in range(VOICE_SUBSCRIBERS):
            number, forwarding = voice_subscriber(i)
            put(number, {"forwarding_number": forwarding, "destinations": [desk]})
            record = json.dumps({"number": number, "destinations": [desk]})
            ref.write(resp("HSET", "ref:fw", forwarding, record))
    # The retried webhook: one call, repeated.
    params = [("AccountSid", "AC00000000000000000000000000000000"), ("ApiVersion", "2010-04-01"),
              ("CallSid", "CA00000000000000000000000000000000"), ("CallStatus", "ringing"),
              ("Called", "+16785550000"), ("Caller", "+12025550302"), ("Direction", "inbound"),
              ("From", "+12025550302"), ("To", "+16785550000")]
    signature = sign(base + "/twilio/voice", params)
    with open(f"{work}/retried.1.tsv", "w") as f:
        f.write(f"{urllib.parse.urlencode(params)}\t{signature}\n")
    with open(f"{work}/retried.lua", "w") as f:
        f.write(f'wrk.method = "POST"\nwrk.body = "{urllib.parse.urlencode(params)}"\n'
                f'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
                f'wrk.headers["X-Twilio-Signature"] = "{signature}"\n')
    hooks = [{"id": f"d{i}", "kind": "client", "address": f"agent{i}",
              "webhook_url": f"http://127.0.0.1:{receiver_port}/hook/{i}"} for i in range(3)]
    ring_tokens = [put(f"+1303555{n:04d}", {"forwarding_number": f"+1720555{n:04d}", "destinations": hooks})
                   for n in range(RING_SUBSCRIBERS)]
    with open(f"{work}/ring.lua", "w") as f:
        f.write("local tokens = {" + ",".join(f'"{t}"' for t in ring_tokens) + "}\n")
        f.write("""local n = 0
request = function()
  n = n + 1
  -- Round robin: no device exceeds its 30 reports a minute.
  local token = tokens[n % #tokens + 1]
  return wrk.format("POST", "/v1/ring", {["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json"}, '{"caller": "+12025550302"}')
end
""")
    two = [dict(desk, webhook_url=f"http://127.0.0.1:{receiver_port}/hook/desk"),
           {"id": "laptop", "kind": "client", "address": "alice",
            "webhook_url": f"http://127.0.0.1:{receiver_port}/hook/laptop"}]
    with open(f"{work}/whole.tsv", "w") as f:
        for n in range(WHOLE_SUBSCRIBERS):
            number, forwarding = f"+1404556{n:04d}", f"+1678556{n:04d}"
            token = put(number, {"forwarding_number": forwarding, "destinations": two})
            f.write(f"{token}\t{number}\t{forwarding}\n")


def calls(url, work, name, count, waiting):
    """COUNT new calls, split over two files: a fresh CallSid and caller each,
    for the voice subscribers in turn. With `waiting`, also the pairs
    (subscriber, caller) bench_seed gives a ring report."""
    pairs = open(f"{work}/{name}.pairs", "w") if waiting else None
    files = [open(f"{work}/{name}.{t}.tsv", "w") for t in (1, 2)]
    for n in range(count):
        number, forwarding = voice_subscriber(n % VOICE_SUBSCRIBERS)
        caller = f"+1{AREAS[n % len(AREAS)]}555{n // len(AREAS) % 10000:04d}"
        params = [("AccountSid", "AC00000000000000000000000000000000"),
                  ("ApiVersion", "2010-04-01"), ("CallSid", f"CA{name[:4]}{n:028d}"),
                  ("CallStatus", "ringing"), ("Called", forwarding), ("Caller", caller),
                  ("Direction", "inbound"), ("From", caller), ("To", forwarding)]
        files[n % 2].write(urllib.parse.urlencode(params) + "\t" + sign(url, params) + "\n")
        if pairs:
            pairs.write(f"{number}\t{caller}\n")
    for f in files:
        f.close()
    if pairs:
        pairs.close()


def sample(url, path, count):
    """COUNT of FILE's requests, one at a time (the file again from its start
    when it has fewer)."""
    target = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(target.hostname, target.port)
    with open(path) as f:
        lines = f.read().splitlines()
    for n in range(count):
        body, signature = lines[n % len(lines)].split("\t")
        conn.request("POST", target.path, body, {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature})
        response = conn.getresponse()
        response.read()
        assert response.status == 200, response.status


def monitor(logs, name, count):
    """From MONITOR logs: the commands a sample sent Redis (a client's: a
    round trip each) and those its scripts ran, per request."""
    top, inside = {}, {}
    for log in logs:
        for line in open(log, errors="replace"):
            m = re.match(r'^[\d.]+ \[\d+ ([^\]]+)\] "([^"]+)"', line)
            if not m:
                continue
            source, command = m.group(1), m.group(2).lower()
            if command in ("monitor", "ping", "info", "config"):
                continue
            into = inside if source == "lua" else top
            into[command] = into.get(command, 0) + 1
    json.dump({"count": count, "top": top, "inside": inside}, open(f"{os.path.dirname(logs[0])}/{name}.monitor.json", "w"))


def wrk(path):
    def ms(text):
        value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    out = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    socket = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return {"rps": rps, "p50": p50, "p99": p99, "errors": non2xx + socket, "total": total}


def report(work, connections, seconds):
    loads = json.load(open(f"{work}/loads.json"))
    hz = os.sysconf("SC_CLK_TCK")
    print(f"\nringrelay benchmark: {connections} connections, {seconds} s per load, "
          "one 2-core machine shared with the load generator\n")
    header = (f"{'load':<44} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'err':>5} "
              f"{'CPU µs/req = service + Redis':>30} {'round trips':>11}")
    print(header)
    rows = []
    for load in loads:
        name = load["name"]
        if load.get("wrk"):
            row = wrk(f"{work}/{name}.wrk")
        else:
            flow = json.load(open(f"{work}/{name}.json"))
            row = {"rps": flow["loops_per_sec"], "p50": flow["p50_ms"], "p99": flow["p99_ms"],
                   "errors": flow["errors"], "total": flow["loops"], "flow": flow}
        requests = max(row["total"], 1)
        service = load["service_ticks"] / hz / requests * 1e6
        redis = load["redis_ticks"] / hz / requests * 1e6
        trips = ""
        if os.path.exists(f"{work}/{name}.monitor.json"):
            m = json.load(open(f"{work}/{name}.monitor.json"))
            trips = f"{sum(m['top'].values()) / m['count']:.2f}"
            row["monitor"] = m
        cpu = f"{service + redis:.1f} = {service:.1f} + {redis:.1f}" if name != "healthz" else f"{service:.1f}"
        print(f"{load['label']:<44} {row['rps']:>8.0f} {row['p50']:>7.2f} {row['p99']:>7.2f} "
              f"{row['errors']:>5} {cpu:>30} {trips:>11}")
        row.update(name=name, label=load["label"], service_us=service, redis_us=redis,
                   requests=requests, extra=load.get("extra", {}))
        rows.append(row)
    print()
    by = {r["name"]: r for r in rows}
    for r in rows:
        if "monitor" in r:
            m = r["monitor"]
            print(f"{r['label']}: per request, sent " + ", ".join(
                f"{k} {v / m['count']:.2f}" for k, v in sorted(m["top"].items())) +
                "; inside scripts " + (", ".join(
                f"{k} {v / m['count']:.2f}" for k, v in sorted(m["inside"].items())) or "nothing"))
        for key, value in r["extra"].items():
            print(f"{r['label']}: {key}: {value}")
        if "flow" in r:
            f = r["flow"]
            print(f"{r['label']}: {f['claimed']} of {f['loops']} forwarded calls claimed their ring report")
    if "new" in by and "reference" in by:
        new, ref = by["new"], by["reference"]
        print(f"\nnew calls, ringrelay / the Node reference: {new['rps'] / ref['rps']:.1f}x the requests a second, "
              f"{(ref['service_us'] + ref['redis_us']) / (new['service_us'] + new['redis_us']):.1f}x less CPU a webhook "
              f"(service + Redis: {new['service_us'] + new['redis_us']:.1f} against {ref['service_us'] + ref['redis_us']:.1f} µs)")
    json.dump(rows, open(f"{work}/report.json", "w"), indent=1)


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "subscribers":
        subscribers(*args)
    elif command == "calls":
        calls(args[0], args[1], args[2], int(args[3]), len(args) > 4 and args[4] == "waiting")
    elif command == "sample":
        sample(args[0], args[1], int(args[2]))
    elif command == "monitor":
        monitor(args[:-2], args[-2], int(args[-1]))
    elif command == "report":
        report(*args)
    else:
        sys.exit(__doc__)
