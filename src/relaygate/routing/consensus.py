"""``consensus``: ask N targets, weigh their answers, return the winner — or fail closed.

Each successful answer is one vote worth ``weight * confidence`` (the aigate pattern): ``weight``
comes from the route's ``weights``; ``confidence`` is the answer's own top-level ``confidence``
field when it is a JSON object carrying one (0 to 1, or a percentage), else 1.

* **text** — answers are normalised (Unicode NFKC, case-folded, whitespace collapsed, outer
  quotes and trailing punctuation dropped) and the normalised answer with the highest total
  score wins;
* **JSON** (every answer is a JSON object, fences allowed) — each field is voted on separately
  (a missing field is a vote for leaving it out) and the answer is composed of the winning
  values; ``confidence`` itself is not voted on.

``quorum`` (default: a majority of the route's targets) is the number of models that must back
the winning answer — for JSON, every field's winning value. Below it the request fails closed
with 502 ``consensus_not_reached``; nothing is returned.

The client gets the winner's body in its own dialect with a top-level ``relaygate`` object::

    "relaygate": {"consensus": {"mode": "text", "quorum": 2, "agreed": 2, "targets": 3,
                  "winner": "a/m1", "votes": [{"backend": "a", "model": "a/m1", "weight": 1.0,
                  "confidence": 1.0, "score": 1.0, "agrees": true}, …]}}

and the header ``x-relaygate-consensus: agreed=2/3; quorum=2; mode=text; winner=a/m1``.
Streaming requests to a consensus route are refused with a 400 (see ``attempt.open_attempt``).
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from relaygate.canonical import ErrorKind, GatewayError, TextPart, Usage
from relaygate.config import RetryConfig
from relaygate.routing.attempt import Outcome
from relaygate.routing.router import Plan, Target
from relaygate.routing.strategies import Execution, Opener, exhausted, state_of, try_target

HEADER = b"x-relaygate-consensus"
_MISSING = "\x00missing"
_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?```$", re.S)


@dataclass(slots=True)
class Vote:
    target: Target
    weight: float
    text: str = ""
    parsed: dict[str, Any] | None = None  # the answer, when it is a JSON object
    error: str | None = None
    agrees: bool = False
    outcome: Outcome | None = None

    @property
    def confidence(self) -> float:
        if self.parsed is None:
            return 1.0
        value = self.parsed.get("confidence")
        if isinstance(value, bool) or not isinstance(value, int | float):
            return 1.0
        value = float(value)
        if value > 1.0:
            value /= 100.0
        return min(1.0, max(0.0, value))

    @property
    def score(self) -> float:
        return self.weight * self.confidence


@dataclass(slots=True)
class Verdict:
    mode: str  # "text" | "json"
    agreed: int  # models backing the answer (for JSON: the weakest field's backing)
    answer: str | dict[str, Any]
    winner: Vote
    fields: dict[str, int] = field(default_factory=dict)  # JSON: backing per field


def normalise(text: str) -> str:
    out = unicodedata.normalize("NFKC", text).casefold()
    out = " ".join(out.split())
    out = out.strip().strip("\"'`*").strip()
    return out.rstrip(".!?;:。").strip()


def as_json(text: str) -> dict[str, Any] | None:
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    if not body.startswith("{"):
        return None
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _key(value: Any) -> str:
    if isinstance(value, str):
        return "s:" + normalise(value)
    return "j:" + orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _best(scores: dict[str, float], order: list[str]) -> str:
    """Highest score; ties go to the answer seen first (the earlier target)."""
    return max(order, key=lambda k: (scores[k], -order.index(k)))


def tally(votes: list[Vote]) -> Verdict:
    """Weigh the successful ``votes`` (at least one) and pick the answer."""
    ok = [v for v in votes if v.error is None]
    if ok and all(v.parsed is not None for v in ok):
        return _tally_json(ok)
    scores: dict[str, float] = {}
    order: list[str] = []
    for v in ok:
        k = normalise(v.text)
        if k not in scores:
            scores[k] = 0.0
            order.append(k)
        scores[k] += v.score
    best = _best(scores, order)
    backers = [v for v in ok if normalise(v.text) == best]
    for v in backers:
        v.agrees = True
    return Verdict("text", len(backers), backers[0].text, backers[0])


def _tally_json(ok: list[Vote]) -> Verdict:
    names: list[str] = []
    for v in ok:
        assert v.parsed is not None
        names.extend(k for k in v.parsed if k not in names and k != "confidence")
    composed: dict[str, Any] = {}
    backing: dict[str, int] = {}
    matches = [0] * len(ok)
    for name in names:
        scores: dict[str, float] = {}
        order: list[str] = []
        values: dict[str, Any] = {}
        keys: list[str] = []
        for v in ok:
            assert v.parsed is not None
            k = _key(v.parsed[name]) if name in v.parsed else _MISSING
            keys.append(k)
            if k not in scores:
                scores[k] = 0.0
                order.append(k)
                values[k] = v.parsed.get(name)
            scores[k] += v.score
        best = _best(scores, order)
        backing[name] = sum(1 for k in keys if k == best)
        for i, k in enumerate(keys):
            if k == best:
                matches[i] += 1
        if best != _MISSING:
            composed[name] = values[best]
    winner_index = max(range(len(ok)), key=lambda i: (matches[i], ok[i].score, -i))
    winner = ok[winner_index]
    assert winner.parsed is not None
    if "confidence" in winner.parsed:
        composed["confidence"] = winner.parsed["confidence"]
    for i, v in enumerate(ok):
        v.agrees = matches[i] == len(names)
    agreed = min(backing.values()) if backing else len(ok)
    return Verdict("json", agreed, composed, winner, backing)


def metadata(plan: Plan, verdict: Verdict | None, votes: list[Vote], quorum: int) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "mode": verdict.mode if verdict else None,
        "quorum": quorum,
        "agreed": verdict.agreed if verdict else 0,
        "targets": len(plan.targets),
        "winner": verdict.winner.target.selector if verdict else None,
        "votes": [
            {
                "backend": v.target.backend.id,
                "model": v.target.selector,
                "weight": v.weight,
                "confidence": v.confidence if v.error is None else None,
                "score": round(v.score, 6) if v.error is None else 0.0,
                "agrees": v.agrees,
                **({"error": v.error} if v.error is not None else {}),
            }
            for v in votes
        ],
    }
    if verdict is not None and verdict.fields:
        meta["fields"] = verdict.fields
    return meta


def header_value(meta: dict[str, Any]) -> bytes:
    return (
        f"agreed={meta['agreed']}/{meta['targets']}; quorum={meta['quorum']}; "
        f"mode={meta['mode']}; winner={meta['winner']}"
    ).encode()


def _compose_body(verdict: Verdict, outcome: Outcome, meta: dict[str, Any]) -> bytes:
    body = outcome.body or b"{}"
    if (
        verdict.mode == "json"
        and verdict.winner.parsed != verdict.answer
        and outcome.response is not None
        and outcome.render is not None
    ):
        text = orjson.dumps(verdict.answer).decode()
        response = replace(outcome.response, content=[TextPart(text)])
        body = outcome.render(response)
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if isinstance(obj, dict):
        obj["relaygate"] = {"consensus": meta}
        return orjson.dumps(obj)
    return body


async def run_consensus(
    plan: Plan, opener: Opener, retry: RetryConfig, execution: Execution
) -> Outcome:
    state = state_of(plan)
    route = plan.route
    quorum = route.quorum if route is not None and route.quorum else len(plan.targets) // 2 + 1
    results = await asyncio.gather(
        *(try_target(t, opener, retry, execution, state=state) for t in plan.targets),
        return_exceptions=True,
    )
    votes: list[Vote] = []
    errors: list[GatewayError] = []
    usage = Usage()
    for target, result in zip(plan.targets, results, strict=True):
        if isinstance(result, GatewayError):
            errors.append(result)
            votes.append(
                Vote(target, target.weight, error=f"{result.kind.value}: {result.message[:200]}")
            )
        elif isinstance(result, BaseException):
            raise result
        else:
            text = result.response.text() if result.response is not None else ""
            votes.append(Vote(target, target.weight, text, as_json(text), outcome=result))
            for name in (
                "input_tokens",
                "output_tokens",
                "cache_read_tokens",
                "cache_write_tokens",
                "reasoning_tokens",
            ):
                setattr(usage, name, getattr(usage, name) + getattr(result.usage, name))
    if not any(v.error is None for v in votes):
        raise exhausted(plan, errors)
    verdict = tally(votes)
    meta = metadata(plan, verdict, votes, quorum)
    if verdict.agreed < quorum:
        raise GatewayError(
            ErrorKind.UPSTREAM,
            f"consensus not reached on route {plan.name}: the best answer had {verdict.agreed} of "
            f"{len(plan.targets)} votes and the quorum is {quorum} "
            f"({sum(1 for v in votes if v.error is not None)} targets failed)",
            code="consensus_not_reached",
        )
    outcome = verdict.winner.outcome
    assert outcome is not None
    outcome.body = _compose_body(verdict, outcome, meta)
    outcome.usage = usage  # every model's tokens were spent on this request
    outcome.headers.append((HEADER, header_value(meta)))
    return outcome
