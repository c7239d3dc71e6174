"""The fixed bodies every upstream of the benchmark serves, and the requests wrk sends."""

from __future__ import annotations

import orjson

MODEL = "bench-model"
CREATED = 1700000000

COMPLETION = orjson.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": CREATED,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello! This is a fixed benchmark completion of a few dozen tokens, "
                    "long enough to look like a real short answer.",
                },
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 24, "total_tokens": 36},
    }
)

MODELS = orjson.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]})


def _chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
    obj = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def content_chunk(text: str) -> bytes:
    return _chunk({"content": text})


_USAGE = (
    b"data: "
    + orjson.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": MODEL,
            "choices": [],
            "usage": {"prompt_tokens": 12, "completion_tokens": 10, "total_tokens": 22},
        }
    )
    + b"\n\n"
)

SSE_TAIL = _chunk({}, "stop") + _USAGE + b"data: [DONE]\n\n"

# Ten content chunks: a short streamed answer.
SSE_BODY = (
    _chunk({"role": "assistant", "content": ""})
    + b"".join(content_chunk(f"word{i} ") for i in range(10))
    + SSE_TAIL
)

PROMPT = [{"role": "user", "content": "Say hello in a short sentence, please."}]


def chat_request(model: str, stream: bool) -> bytes:
    body: dict[str, object] = {"model": model, "messages": PROMPT, "max_tokens": 64}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return orjson.dumps(body)


def anthropic_request(model: str) -> bytes:
    return orjson.dumps({"model": model, "max_tokens": 64, "stream": True, "messages": PROMPT})
