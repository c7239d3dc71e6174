"""A paced OpenAI-chat SSE upstream: every request gets ``--chunks`` content chunks, one every
``--interval`` seconds, then a finish chunk, a usage chunk and ``[DONE]``. Used to hold many
streams open at once (the RSS scenario). Non-stream requests get one JSON completion at once."""

from __future__ import annotations

import argparse
import asyncio

import orjson
from aiohttp import web

from bench import payloads


def make_app(chunks: int, interval: float) -> web.Application:
    async def complete(request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        if not body.get("stream"):
            return web.Response(body=payloads.COMPLETION, content_type="application/json")
        out = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await out.prepare(request)
        for i in range(chunks):
            await out.write(payloads.content_chunk(f"tok{i} "))
            await asyncio.sleep(interval)
        await out.write(payloads.SSE_TAIL)
        await out.write_eof()
        return out

    async def models(request: web.Request) -> web.Response:
        return web.Response(body=payloads.MODELS, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", complete)
    app.router.add_get("/v1/models", models)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=40)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    web.run_app(
        make_app(args.chunks, args.interval),
        host="127.0.0.1",
        port=args.port,
        access_log=None,
        print=None,
        backlog=4096,
    )


if __name__ == "__main__":
    main()
