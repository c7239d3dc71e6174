"""DisconnectWatch both ways: a callback in the scope (relaygate's protocol) or a watcher task
blocked in ``receive`` (any other ASGI server)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from relaygate.routing.cancel import DISCONNECT_KEY, DisconnectWatch
from relaygate.server.protocol import DISCONNECT_KEY as SERVER_KEY


def test_routing_and_server_agree_on_the_key() -> None:
    assert DISCONNECT_KEY == SERVER_KEY


@pytest.mark.parametrize("via", ["callback", "receive"])
async def test_disconnect_while_armed_cancels_the_request(via: str) -> None:
    left = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await left.wait()
        return {"type": "http.disconnect"}

    scope: dict[str, Any] = {DISCONNECT_KEY: []} if via == "callback" else {}
    tasks_before = len(asyncio.all_tasks())
    watch = DisconnectWatch(receive, scope)
    # The callback way needs no task of its own.
    assert len(asyncio.all_tasks()) == tasks_before + (0 if via == "callback" else 1)
    watch.arm()
    try:
        if via == "callback":
            asyncio.get_running_loop().call_later(0.01, scope[DISCONNECT_KEY][0])
        else:
            asyncio.get_running_loop().call_later(0.01, left.set)
        with pytest.raises(asyncio.CancelledError):
            await asyncio.sleep(5)
    finally:
        watch.disarm()
    assert watch.gone
    watch.close(responded=False)
    assert scope.get(DISCONNECT_KEY, []) == []  # the callback is withdrawn with the watch


async def test_disconnect_while_disarmed_only_marks_it() -> None:
    scope: dict[str, Any] = {DISCONNECT_KEY: []}

    async def receive() -> dict[str, Any]:
        raise AssertionError("the callback way never reads receive")

    watch = DisconnectWatch(receive, scope)
    scope[DISCONNECT_KEY][0]()
    assert watch.gone and not watch.fired
    await asyncio.sleep(0)  # nothing was cancelled
    watch.close(responded=True)
