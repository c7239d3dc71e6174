"""relaygate vs a bare aiohttp proxy, measured in the same run on loopback.

``python -m bench.driver [--quick] [--soak-requests N] [--out FILE]`` (see ``bench/run.sh``).

Everything runs on 127.0.0.1: nginx (zero-delay upstream: fixed JSON and SSE), a paced-SSE
upstream, the bare proxy (one per upstream), relaygate (auth on, one worker), and wrk. Each
scenario runs against the bare proxy and relaygate back to back, so the ratio compares like
with like even on a busy machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import payloads

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PY = sys.executable
MASTER_KEY = "rg-bench-master-key-0123456789"
UPSTREAM_KEY = "sk-bench-upstream-key-0123456789"

# Targets from issue 7 (vs the bare proxy measured in the same run).
TARGETS = {
    "nonstream_rps": 1.0,
    "stream_rps": 0.6,
    "xdialect_rps": 0.4,
    "added_p50_ms": 0.5,
    "rss_after_load_mb": 120.0,
    "rss_open_streams_mb": 250.0,
}


# ----------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited with {proc.returncode}; see its log in the work dir")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise SystemExit(f"{name} did not listen on {port} within {timeout:.0f}s")


@dataclass
class Proc:
    name: str
    port: int
    popen: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def fds(self) -> int:
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (robust to other load on the machine)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# CPU placement: the proxies under test share one CPU, the load side (nginx, the paced
# upstream, wrk) the others. On a VM whose vCPUs drift in speed independently, a bare proxy and
# relaygate scheduled on different vCPUs compare the vCPUs as much as the proxies.
PIN: dict[str, set[int] | None] = {"proxy": None, "load": None}


def plan_cpus(enabled: bool) -> None:
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if enabled and len(cpus) >= 2:
        PIN["proxy"], PIN["load"] = {cpus[-1]}, set(cpus[:-1])
    else:
        PIN["proxy"] = PIN["load"] = None


def _pinned(role: str) -> Any:
    cpus = PIN[role]
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


class Fleet:
    """Starts processes, remembers them, stops exactly those (by pid) at the end."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[Proc] = []

    def start(
        self,
        name: str,
        argv: list[str],
        port: int,
        env: dict[str, str] | None = None,
        role: str = "load",
    ) -> Proc:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the proc
        popen = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=ROOT,
            preexec_fn=_pinned(role),
        )
        proc = Proc(name, port, popen)
        self.procs.append(proc)
        wait_port(port, popen, name)
        return proc

    def stop(self, proc: Proc) -> None:
        if proc.popen.poll() is None:
            proc.popen.send_signal(signal.SIGTERM)
            try:
                proc.popen.wait(10)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs)):
            self.stop(proc)


# ----------------------------------------------------------------------------- wrk


@dataclass
class Load:
    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    pid: int | None = None  # the proxy under test, for CPU time per request


def run_wrk(
    workdir: Path,
    load: Load,
    *,
    connections: int,
    seconds: float,
    timeout: float = 10.0,
    threads: int = 1,
) -> dict[str, Any]:
    body_file = workdir / f"body-{abs(hash(load.body))}.json"
    if not body_file.exists():
        body_file.write_bytes(load.body)
    env = {
        **os.environ,
        "BENCH_BODY_FILE": str(body_file),
        "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in load.headers.items()),
    }
    argv = [
        "wrk",
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={max(1, round(timeout))}s",
        "-s",
        str(BENCH / "report.lua"),
        load.url,
    ]
    cpu0 = cpu_seconds(load.pid) if load.pid else 0.0
    out = subprocess.run(
        argv, env=env, capture_output=True, text=True, check=False, preexec_fn=_pinned("load")
    )
    cpu = cpu_seconds(load.pid) - cpu0 if load.pid else 0.0
    for line in out.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            result: dict[str, Any] = json.loads(line[len("BENCHJSON ") :])
            secs = result["duration_us"] / 1e6
            result["rps"] = result["requests"] / secs if secs else 0.0
            if load.pid and result["requests"]:
                result["cpu_us_per_req"] = cpu * 1e6 / result["requests"]
                result["cpu_util"] = cpu / secs if secs else 0.0
            result["errors"] = sum(
                result[k]
                for k in (
                    "connect_errors",
                    "read_errors",
                    "write_errors",
                    "status_errors",
                    "timeouts",
                )
            )
            return result
    raise SystemExit(f"wrk failed ({out.returncode}): {out.stderr or out.stdout}")


def check(load: Load, expect: bytes) -> None:
    """One request by hand before measuring: a misconfigured bench must fail loudly."""
    req = urllib.request.Request(load.url, data=load.body, method="POST")
    req.add_header("Content-Type", "application/json")
    for k, v in load.headers.items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            data = resp.read()
    except urllib.error.HTTPError as exc:
        raise SystemExit(
            f"sanity check {load.url}: HTTP {exc.code}: {exc.read()[:300]!r}"
        ) from None
    if expect not in data:
        raise SystemExit(f"sanity check {load.url}: {expect!r} not in {data[:300]!r}")


@contextlib.contextmanager
def sampling(proc: Proc, every: float = 0.25) -> Iterator[dict[str, float]]:
    """Peak RSS and fd count of ``proc`` while the block runs."""
    peak = {"rss_mb": proc.rss_mb(), "fds": float(proc.fds())}
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            with contextlib.suppress(OSError):
                peak["rss_mb"] = max(peak["rss_mb"], proc.rss_mb())
                peak["fds"] = max(peak["fds"], float(proc.fds()))

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


# ----------------------------------------------------------------------------- set-up


def nginx_conf(workdir: Path, port: int) -> Path:
    bodies = {
        "completion": payloads.COMPLETION,
        "sse": payloads.SSE_BODY,
        "models": payloads.MODELS,
    }
    for name, body in bodies.items():
        # Inlined in a single-quoted nginx string: these would need escaping.
        assert not any(c in body for c in (b"'", b"\\", b"$")), name
    text = (BENCH / "nginx.conf.tmpl").read_text()
    conf = text.format(prefix=workdir, port=port, **{k: v.decode() for k, v in bodies.items()})
    path = workdir / "nginx.conf"
    path.write_text(conf)
    return path


def relaygate_config(workdir: Path, port: int, nginx: int, paced: int) -> Path:
    def backend(bid: str, base: str) -> dict[str, Any]:
        return {
            "id": bid,
            "kind": "custom-openai-legacy-compatible",
            "config": {
                "backend_prefix": bid,
                "base_url": base,
                "api_key": UPSTREAM_KEY,
                "models": {"source": "inline", "items": [{"native_id": payloads.MODEL}]},
            },
        }

    config = {
        "server": {
            "host": "127.0.0.1",
            "port": port,
            "auth": {"enabled": True, "api_key_env": "RELAYGATE_API_KEY"},
        },
        "plugins": {
            "backends": [
                backend("json", f"http://127.0.0.1:{nginx}/json/v1"),
                backend("sse", f"http://127.0.0.1:{nginx}/sse/v1"),
                backend("paced", f"http://127.0.0.1:{paced}/v1"),
            ]
        },
        "storage": {"url": f"sqlite:///{workdir}/ledger.db"},
        "timeouts": {"first_token": 120, "total": 600},
    }
    path = workdir / "relaygate.yaml"
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return path


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[
        0
    ]
    nginx_version = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_gb, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": wrk_version,
        "nginx": nginx_version,
        "loadavg_at_start": os.getloadavg(),
    }


# ----------------------------------------------------------------------------- scenarios


@dataclass
class Settings:
    quick: bool
    seconds: float
    rounds: int
    warmup: float
    soak_requests: int
    soak_slice: float
    open_streams: int
    paced_chunks: int
    paced_interval: float


def settings(args: argparse.Namespace) -> Settings:
    if args.quick:
        return Settings(
            True,
            3,
            args.rounds or 1,
            1,
            args.soak_requests or 30_000,
            5,
            args.open_streams,
            10,
            0.5,
        )
    return Settings(
        False, 10, args.rounds or 3, 2, args.soak_requests or 1_000_000, 10, args.open_streams,
        40, 0.5,
    )  # fmt: skip


def ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short runs (3 s each, 30k soak)")
    parser.add_argument(
        "--soak-requests", type=int, default=0, help="soak size (default 1,000,000; --quick 30,000)"
    )
    parser.add_argument("--open-streams", type=int, default=1000, help="concurrent paced streams")
    parser.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="alternated bare/relaygate runs per scenario, median shown (default 3; --quick 1)",
    )
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="do not pin the proxies to one CPU and the load side to the others",
    )
    parser.add_argument("--skip-soak", action="store_true")
    parser.add_argument("--skip-open-streams", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated scenario names to run")
    parser.add_argument("--log-level", default="info", help="relaygate --log-level (default info)")
    parser.add_argument("--out", default=str(BENCH / "results" / "latest.json"))
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, configs)")
    args = parser.parse_args(argv)
    s = settings(args)
    plan_cpus(not args.no_pin)
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None:
            raise SystemExit(
                f"{tool} not found: run bench/run.sh (installs it) or apt-get install {tool}"
            )
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    workdir = Path(tempfile.mkdtemp(prefix="relaygate-bench-"))
    fleet = Fleet(workdir)
    only = {x for x in args.only.split(",") if x}
    results: dict[str, Any] = {
        "machine": machine(),
        "command": "bench/run.sh " + " ".join(sys.argv[1:] if argv is None else argv),
        "settings": {**s.__dict__, "cpus": {k: sorted(v) if v else None for k, v in PIN.items()}},
        "targets": TARGETS,
        "scenarios": {},
        "notes": [],
    }
    scen: dict[str, Any] = results["scenarios"]

    def want(name: str) -> bool:
        return not only or name in only

    def save() -> None:  # after every scenario, so a long run interrupted keeps what it measured
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2))

    try:
        ports = {k: free_port() for k in ("nginx", "paced", "bare", "bare_paced", "relaygate")}
        fleet.start(
            "nginx",
            ["nginx", "-p", str(workdir), "-c", str(nginx_conf(workdir, ports["nginx"]))],
            ports["nginx"],
        )
        fleet.start(
            "paced",
            [
                PY,
                "-m",
                "bench.paced_upstream",
                "--port",
                str(ports["paced"]),
                "--chunks",
                str(s.paced_chunks),
                "--interval",
                str(s.paced_interval),
            ],
            ports["paced"],
        )
        bare = fleet.start(
            "bare",
            [
                PY,
                "-m",
                "bench.bare_proxy",
                "--port",
                str(ports["bare"]),
                "--upstream",
                f"http://127.0.0.1:{ports['nginx']}",
            ],
            ports["bare"],
            role="proxy",
        )
        bare_paced = fleet.start(
            "bare_paced",
            [
                PY,
                "-m",
                "bench.bare_proxy",
                "--port",
                str(ports["bare_paced"]),
                "--upstream",
                f"http://127.0.0.1:{ports['paced']}",
            ],
            ports["bare_paced"],
            role="proxy",
        )
        cfg = relaygate_config(workdir, ports["relaygate"], ports["nginx"], ports["paced"])
        rg = fleet.start(
            "relaygate",
            [
                PY,
                "-m",
                "relaygate.cli",
                "serve",
                "--config",
                str(cfg),
                "--port",
                str(ports["relaygate"]),
                "--workers",
                "1",
                "--log-level",
                args.log_level,
            ],
            ports["relaygate"],
            env={"PYTHONPATH": str(ROOT / "src"), "RELAYGATE_API_KEY": MASTER_KEY},
            role="proxy",
        )
        results["rss_idle_mb"] = {"bare": bare.rss_mb(), "relaygate": rg.rss_mb()}

        n, b, r = ports["nginx"], ports["bare"], ports["relaygate"]
        auth = {"Authorization": f"Bearer {MASTER_KEY}"}
        ns_body = payloads.chat_request(payloads.MODEL, stream=False)
        st_body = payloads.chat_request(payloads.MODEL, stream=True)
        loads = {
            "direct_ns": Load(f"http://127.0.0.1:{n}/json/v1/chat/completions", ns_body),
            "bare_ns": Load(f"http://127.0.0.1:{b}/json/v1/chat/completions", ns_body),
            "rg_ns": Load(
                f"http://127.0.0.1:{r}/v1/chat/completions",
                payloads.chat_request("json/" + payloads.MODEL, stream=False),
                auth,
            ),
            "bare_st": Load(f"http://127.0.0.1:{b}/sse/v1/chat/completions", st_body),
            "rg_st": Load(
                f"http://127.0.0.1:{r}/v1/chat/completions",
                payloads.chat_request("sse/" + payloads.MODEL, stream=True),
                auth,
            ),
            "rg_xd": Load(
                f"http://127.0.0.1:{r}/v1/messages",
                payloads.anthropic_request("sse/" + payloads.MODEL),
                {"x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01"},
            ),
            "bare_paced": Load(
                f"http://127.0.0.1:{ports['bare_paced']}/v1/chat/completions", st_body
            ),
            "rg_paced": Load(
                f"http://127.0.0.1:{r}/v1/chat/completions",
                payloads.chat_request("paced/" + payloads.MODEL, stream=True),
                auth,
            ),
        }
        owners = {"bare_paced": bare_paced.pid, "direct_ns": None}
        for name, load in loads.items():
            load.pid = owners.get(name, bare.pid if name.startswith("bare") else rg.pid)
        for name in ("direct_ns", "bare_ns", "rg_ns"):
            check(loads[name], b"fixed benchmark completion")
        for name in ("bare_st", "rg_st"):
            check(loads[name], b"[DONE]")
        xdialect = True
        try:
            check(loads["rg_xd"], b"message_stop")
        except SystemExit as exc:
            xdialect = False
            results["notes"].append(f"cross-dialect scenario skipped: {exc}")
            print(f"! cross-dialect scenario skipped: {exc}", file=sys.stderr)

        def wrk(
            name: str, conns: int, secs: float | None = None, timeout: float = 10.0
        ) -> dict[str, Any]:
            return run_wrk(
                workdir, loads[name], connections=conns, seconds=secs or s.seconds, timeout=timeout
            )

        print(f"warming up ({s.warmup:.0f}s per target)…", file=sys.stderr)
        for name in ("bare_ns", "rg_ns", "bare_st", "rg_st"):
            wrk(name, 32, s.warmup)

        def pair(
            scenario: str, bare_load: str, rg_load: str, conns: int, direct: str | None = None
        ) -> None:
            """``rounds`` alternated runs of bare proxy and relaygate; the table shows the round
            with the median RPS ratio (the VM's speed drifts between runs minutes apart, so a
            single pair can fall in a slow phase for one side only)."""
            if not want(scenario):
                return
            print(f"{scenario}…", file=sys.stderr)
            rounds = []
            for _ in range(s.rounds):
                one = {"bare": wrk(bare_load, conns), "relaygate": wrk(rg_load, conns)}
                if direct is not None:
                    one["direct"] = wrk(direct, conns)
                rounds.append(one)
            ranked = sorted(rounds, key=lambda r: ratio(r["relaygate"]["rps"], r["bare"]["rps"]))
            scen[scenario] = {**ranked[len(ranked) // 2], "rounds": rounds}
            save()

        pair("nonstream_c1", "bare_ns", "rg_ns", 1, direct="direct_ns")
        pair("nonstream_c32", "bare_ns", "rg_ns", 32)
        pair("nonstream_c256", "bare_ns", "rg_ns", 256)
        pair("stream_c32", "bare_st", "rg_st", 32)
        if xdialect:
            pair("xdialect_stream_c32", "bare_st", "rg_xd", 32)
        results["rss_after_load_mb"] = {"bare": bare.rss_mb(), "relaygate": rg.rss_mb()}
        save()

        if not args.skip_open_streams and want("open_streams"):
            duration = s.paced_chunks * s.paced_interval
            secs = duration * 1.5 + 3
            print(
                f"open_streams ({s.open_streams} x {duration:.0f}s paced streams)…", file=sys.stderr
            )
            entry: dict[str, Any] = {"stream_seconds": duration}
            for who, proc, load in (
                ("bare", bare_paced, "bare_paced"),
                ("relaygate", rg, "rg_paced"),
            ):
                with sampling(proc) as peak:
                    res = wrk(load, s.open_streams, secs, timeout=duration * 3 + 10)
                res["peak_rss_mb"] = peak["rss_mb"]
                res["peak_fds"] = peak["fds"]
                res["rss_after_mb"] = proc.rss_mb()
                entry[who] = res
            scen["open_streams"] = entry
            save()

        if not args.skip_soak and want("soak"):
            scen["soak"] = soak(s, rg, wrk)
    finally:
        fleet.stop_all()
        save()
    print(table(results))
    print(f"\nresults: {args.out}   work dir: {workdir}")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def soak(s: Settings, rg: Proc, wrk: Any) -> dict[str, Any]:
    """Alternating non-stream / stream slices at concurrency 32 until ``soak_requests`` are
    done; RSS after every slice."""
    print(f"soak ({s.soak_requests:,} requests)…", file=sys.stderr)
    total = 0
    errors = 0
    samples: list[tuple[int, float]] = [(0, rg.rss_mb())]
    started = time.monotonic()
    i = 0
    while total < s.soak_requests:
        res = wrk("rg_ns" if i % 2 == 0 else "rg_st", 32, s.soak_slice)
        total += res["requests"]
        errors += res["errors"]
        samples.append((total, round(rg.rss_mb(), 2)))
        i += 1
        if i % 10 == 0:
            print(f"  {total:,} requests, RSS {samples[-1][1]:.1f} MB", file=sys.stderr)
    warm_at = total // 10
    warm = next(rss for count, rss in samples if count >= warm_at)
    final = samples[-1][1]
    return {
        "requests": total,
        "errors": errors,
        "seconds": round(time.monotonic() - started, 1),
        "rss_samples": samples,
        "rss_after_warmup_mb": warm,
        "rss_final_mb": final,
        "rss_max_after_warmup_mb": max(rss for count, rss in samples if count >= warm_at),
        "growth_after_warmup_mb": round(final - warm, 2),
    }


# ----------------------------------------------------------------------------- report


def table(results: dict[str, Any]) -> str:
    sc = results["scenarios"]
    rows: list[tuple[str, str, str, str, str]] = []

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    def rps_row(name: str, label: str, target: float) -> None:
        if name not in sc:
            return
        bare, rg = sc[name]["bare"], sc[name]["relaygate"]
        q = ratio(rg["rps"], bare["rps"])
        errs = f" ({rg['errors']} err)" if rg["errors"] else ""
        # CPU per request is what load on a shared machine does not distort.
        cpu = ratio(bare.get("cpu_us_per_req", 0), rg.get("cpu_us_per_req", 0))
        rows.append(
            (
                label,
                f"{bare['rps']:,.0f}",
                f"{rg['rps']:,.0f}{errs}",
                f"{q:.2f}x (cpu {cpu:.2f}x: {bare.get('cpu_us_per_req', 0):.0f} vs {rg.get('cpu_us_per_req', 0):.0f} us/req)",
                f"≥{target}x {verdict(q >= target)}",
            )
        )

    rps_row("nonstream_c1", "non-stream c=1 (RPS)", TARGETS["nonstream_rps"])
    rps_row("nonstream_c32", "non-stream c=32 (RPS)", TARGETS["nonstream_rps"])
    rps_row("nonstream_c256", "non-stream c=256 (RPS)", TARGETS["nonstream_rps"])
    rps_row("stream_c32", "stream c=32 (streams/s)", TARGETS["stream_rps"])
    rps_row("xdialect_stream_c32", "anthropic→openai stream c=32", TARGETS["xdialect_rps"])
    if "nonstream_c1" in sc:
        c1 = sc["nonstream_c1"]
        added = (c1["relaygate"]["p50_us"] - c1["bare"]["p50_us"]) / 1000
        rows.append(
            (
                "p50 latency c=1 (ms)",
                f"{c1['bare']['p50_us'] / 1000:.3f}",
                f"{c1['relaygate']['p50_us'] / 1000:.3f}",
                f"+{added:.3f} ms",
                f"≤+{TARGETS['added_p50_ms']} ms {verdict(added <= TARGETS['added_p50_ms'])}",
            )
        )
        rows.append(("  (nginx direct p50 ms)", f"{c1['direct']['p50_us'] / 1000:.3f}", "", "", ""))
    if "rss_after_load_mb" in results:
        ral = results["rss_after_load_mb"]
        rows.append(
            (
                "RSS after load (MB)",
                f"{ral['bare']:.1f}",
                f"{ral['relaygate']:.1f}",
                "",
                f"≤{TARGETS['rss_after_load_mb']:.0f} {verdict(ral['relaygate'] <= TARGETS['rss_after_load_mb'])}",
            )
        )
    if "open_streams" in sc:
        os_ = sc["open_streams"]
        rg = os_["relaygate"]
        rows.append(
            (
                f"peak RSS, {results['settings']['open_streams']} open streams (MB)",
                f"{os_['bare']['peak_rss_mb']:.1f}",
                f"{rg['peak_rss_mb']:.1f}",
                f"{rg['requests']} done, {rg['errors']} err",
                f"≤{TARGETS['rss_open_streams_mb']:.0f} {verdict(rg['peak_rss_mb'] <= TARGETS['rss_open_streams_mb'])}",
            )
        )
    if "soak" in sc:
        sk = sc["soak"]
        growth = sk["growth_after_warmup_mb"]
        flat = growth <= max(2.0, 0.02 * sk["rss_after_warmup_mb"])
        rows.append(
            (
                f"soak {sk['requests']:,} req: RSS warm→end (MB)",
                "",
                f"{sk['rss_after_warmup_mb']:.1f}→{sk['rss_final_mb']:.1f}",
                f"{growth:+.1f} MB, {sk['errors']} err",
                f"flat {verdict(flat)}",
            )
        )
    head = ("scenario", "bare proxy", "relaygate", "ratio / delta", "target")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in [head, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
