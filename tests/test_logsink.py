"""The batching log handler: lines wait for a batch, problems and full batches go out at once,
nothing is lost at close."""

from __future__ import annotations

import gc
import io
import logging
import logging.config
import time
from collections.abc import Iterator

import pytest

from relaygate.logsink import BatchingStreamHandler, DirectLines


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("relaygate.test-logsink")
    log.setLevel(logging.INFO)
    log.propagate = False
    yield log
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()


def test_lines_wait_until_the_batch_is_written(logger: logging.Logger) -> None:
    out = io.StringIO()
    handler = BatchingStreamHandler(out, interval=60)
    logger.addHandler(handler)
    logger.info("one")
    logger.info("two")
    assert out.getvalue() == ""  # not one write per line
    handler.flush()
    assert out.getvalue() == "one\ntwo\n"


def test_warnings_and_full_batches_go_out_at_once(logger: logging.Logger) -> None:
    out = io.StringIO()
    handler = BatchingStreamHandler(out, interval=60, max_bytes=20)
    logger.addHandler(handler)
    logger.info("queued")
    logger.warning("problem")
    assert out.getvalue() == "queued\nproblem\n"  # in order, the queued line first
    logger.info("x" * 25)
    assert out.getvalue().endswith("x" * 25 + "\n")


def test_the_flusher_writes_a_quiet_batch(logger: logging.Logger) -> None:
    out = io.StringIO()
    logger.addHandler(BatchingStreamHandler(out, interval=0.01))
    logger.info("late line")
    wait_for(out, "late line\n")


def wait_for(out: io.StringIO, text: str) -> None:
    for _ in range(100):
        if out.getvalue() == text:
            return
        time.sleep(0.02)
    assert out.getvalue() == text


def test_close_writes_what_is_left_and_lines_after_it_still_go_out(
    logger: logging.Logger,
) -> None:
    # dictConfig (uvicorn's logging setup) closes every handler but leaves it attached.
    out = io.StringIO()
    handler = BatchingStreamHandler(out, interval=0.01)
    logger.addHandler(handler)
    logger.info("before")
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    assert out.getvalue() == "before\n"
    logger.info("after")
    wait_for(out, "before\nafter\n")


def test_the_flusher_ends_with_its_handler() -> None:
    handler = BatchingStreamHandler(io.StringIO(), interval=0.01)
    flusher = handler._flusher
    handler.close()
    del handler
    gc.collect()
    flusher.join(timeout=2)
    assert not flusher.is_alive()


def test_a_closed_stream_does_not_raise(logger: logging.Logger) -> None:
    out = io.StringIO()
    handler = BatchingStreamHandler(out, interval=60)
    logger.addHandler(handler)
    logger.info("dropped")
    out.close()
    handler.flush()  # ValueError from the closed stream is swallowed


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval must be > 0"):
        BatchingStreamHandler(io.StringIO(), interval=0)


@pytest.fixture
def root_batching() -> Iterator[tuple[io.StringIO, BatchingStreamHandler]]:
    """The root logger set up the way ``relaygate serve`` sets it up, restored afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    out = io.StringIO()
    handler = BatchingStreamHandler(out, interval=60)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        yield out, handler
    finally:
        # pytest's capture handlers of the setup phase are already detached: not put back.
        root.handlers[:] = [h for h in saved[0] if not type(h).__module__.startswith("_pytest")]
        root.setLevel(saved[1])
        handler.close()


def test_direct_lines_match_what_logging_writes(
    root_batching: tuple[io.StringIO, BatchingStreamHandler],
) -> None:
    out, handler = root_batching
    logging.getLogger().handlers[:] = [handler]  # pytest's own capture handlers step out
    direct = DirectLines("relaygate.test-direct")
    logging.getLogger("relaygate.test-direct").info('{"a": 1}')
    assert direct.write('{"a": 1}') is True
    handler.flush()
    first, second = out.getvalue().splitlines()
    assert first == second == 'INFO relaygate.test-direct: {"a": 1}'


def test_direct_lines_step_aside_for_other_handlers_and_formats(
    root_batching: tuple[io.StringIO, BatchingStreamHandler],
) -> None:
    out, handler = root_batching
    logging.getLogger().handlers[:] = [handler]
    direct = DirectLines("relaygate.test-direct")
    assert direct.write("") is True
    handler.flush()
    out.truncate(0)
    out.seek(0)
    extra = logging.StreamHandler(io.StringIO())
    logging.getLogger().addHandler(extra)  # e.g. a test's log capture: it must see the line
    assert direct.write("x") is False
    logging.getLogger().removeHandler(extra)
    own = logging.getLogger("relaygate.test-direct")
    own.addHandler(extra)
    assert direct.write("x") is False
    own.removeHandler(extra)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))  # needs a record
    assert DirectLines("relaygate.test-direct").write("x") is False
    handler.flush()
    assert out.getvalue() == ""
