"""The floor: a bare aiohttp pass-through proxy. No parsing, no auth, no routing — bytes in,
bytes out, streamed. ``python -m bench.bare_proxy --port 9001 --upstream http://127.0.0.1:9000``"""

from __future__ import annotations

import argparse

import aiohttp
from aiohttp import web

HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


def make_app(upstream: str) -> web.Application:
    async def start(app: web.Application) -> None:
        connector = aiohttp.TCPConnector(limit=0)  # no pool cap: 1,000 open streams must fit
        app["session"] = aiohttp.ClientSession(upstream, connector=connector)

    async def stop(app: web.Application) -> None:
        await app["session"].close()

    async def relay(request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        body = await request.read()
        session: aiohttp.ClientSession = request.app["session"]
        async with session.request(
            request.method, request.rel_url, data=body, headers=headers
        ) as up:
            out = web.StreamResponse(status=up.status)
            out.content_type = up.content_type
            await out.prepare(request)
            async for chunk in up.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
            return out

    app = web.Application()
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_route("*", "/{tail:.*}", relay)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    try:
        import uvloop  # the same event loop relaygate runs on, so the comparison is fair

        uvloop.install()
    except ImportError:
        pass
    web.run_app(
        make_app(args.upstream), host="127.0.0.1", port=args.port, access_log=None, print=None
    )


if __name__ == "__main__":
    main()
