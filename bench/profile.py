"""Profile relaygate's hot path with py-spy under wrk load.

``python -m bench.profile [stream|nonstream|xdialect] [--seconds 10] [--out DIR]`` starts
nginx and relaygate like the benchmark does, loads one scenario at concurrency 32 and records
py-spy's collapsed stacks; prints the functions with the most own and cumulative samples.
Needs ``pip install py-spy`` (root, or ptrace permission, to attach).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from bench import payloads
from bench.driver import (
    MASTER_KEY,
    PY,
    ROOT,
    Fleet,
    Load,
    free_port,
    nginx_conf,
    relaygate_config,
    run_wrk,
)


def summarize(raw: Path, top: int) -> str:
    own: collections.Counter[str] = collections.Counter()
    cum: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        count = int(count_s)
        total += count
        frames = stack.split(";")
        own[frames[-1]] += count
        for frame in set(frames):
            cum[frame] += count
    out = [f"{total} samples", "", "own:"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    out += ["", "cumulative:"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in cum.most_common(top)]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenario", choices=["stream", "nonstream", "xdialect"], default="stream")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    if shutil.which("py-spy") is None and not (Path(PY).parent / "py-spy").exists():
        raise SystemExit("py-spy not found: pip install py-spy")
    pyspy = shutil.which("py-spy") or str(Path(PY).parent / "py-spy")
    workdir = Path(args.out or tempfile.mkdtemp(prefix="relaygate-profile-"))
    workdir.mkdir(parents=True, exist_ok=True)
    fleet = Fleet(workdir)
    try:
        n, r = free_port(), free_port()
        fleet.start("nginx", ["nginx", "-p", str(workdir), "-c", str(nginx_conf(workdir, n))], n)
        cfg = relaygate_config(workdir, r, n, n)
        rg = fleet.start(
            "relaygate",
            [PY, "-m", "relaygate.cli", "serve", "--config", str(cfg), "--port", str(r)],
            r,
            env={"PYTHONPATH": str(ROOT / "src"), "RELAYGATE_API_KEY": MASTER_KEY},
        )
        url = f"http://127.0.0.1:{r}"
        auth = {"Authorization": f"Bearer {MASTER_KEY}"}
        load = {
            "stream": Load(
                url + "/v1/chat/completions", payloads.chat_request("sse/bench-model", True), auth
            ),
            "nonstream": Load(
                url + "/v1/chat/completions", payloads.chat_request("json/bench-model", False), auth
            ),
            "xdialect": Load(
                url + "/v1/messages",
                payloads.anthropic_request("sse/bench-model"),
                {"x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01"},
            ),
        }[args.scenario]
        run_wrk(workdir, load, connections=args.connections, seconds=2)  # warm up
        raw = workdir / f"{args.scenario}.txt"
        result: dict[str, object] = {}
        thread = threading.Thread(
            target=lambda: result.update(
                run_wrk(workdir, load, connections=args.connections, seconds=args.seconds)
            )
        )
        thread.start()
        subprocess.run(
            [
                pyspy,
                "record",
                "--format",
                "raw",
                "-o",
                str(raw),
                "-d",
                str(args.seconds - 1),
                "-r",
                "200",
                "-p",
                str(rg.pid),
            ],
            check=True,
            capture_output=True,
        )
        thread.join()
        print(
            f"{args.scenario}: {result.get('rps', 0):.0f} RPS under the profiler ({result.get('errors')} errors)"
        )
        print(summarize(raw, args.top))
        print(f"\nraw stacks: {raw}")
    finally:
        fleet.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
