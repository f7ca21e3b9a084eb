"""Scenario files: steps a till runs in order, each checked against what it expects.

A scenario is TOML (or YAML) with `name`, optional `protocol` (`iso` or `tgl`), optional
`requires` (programs the config must have, else the scenario is skipped) and `[[steps]]`.
docs/simulator.md describes every step key; `load_scenario` rejects unknown keys by their path
(`steps[3].amout: unknown key`), so a typo never turns into a step that silently checks nothing.

Values may use `${name}` (a card issued `as` that name, a `capture`d value) and `${step.what}`
(`stan`, `auth`, `rc`, `balance`, a raw field such as `38`, of the step called `step`). Amounts
are strings in major units (`"12.50"`, parsed by gateway.ledger.amounts); points are integers.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.config.model import Config
from gateway.ledger.amounts import format_amount, parse_amount
from gateway.sim.faults import FAULTS, FaultOutcome, run_fault
from gateway.sim.issuer import issue_cards, sweep_points
from gateway.sim.links import LinkClosed
from gateway.sim.messages import Call, Exchange, original_exchange
from gateway.sim.target import Target
from gateway.sim.till import Till
from protocols.model import Op

TOP_KEYS = frozenset({"name", "description", "protocol", "requires", "steps"})
STEP_KEYS = frozenset({
    "name", "op", "card", "target", "amount", "points", "pin", "invoice", "operator", "partial",
    "reward", "mti", "original", "expect", "capture", "fault", "same_as", "sleep", "issue", "as",
    "note", "track2", "track1", "swipe", "barcode", "points_sweep",
})
EXPECT_KEYS = frozenset({"rc", "balance", "amount", "points", "auth", "closed", "message",
                         "tier"})
_VAR = re.compile(r"\$\{([A-Za-z0-9_.\-]+)\}")


class ScenarioError(ValueError):
    """A scenario file that cannot be run; the message names the file and the key."""


@dataclass
class Scenario:
    name: str
    path: str
    steps: list[dict[str, Any]]
    protocol: str | None = None
    requires: tuple[str, ...] = ()
    description: str = ""


@dataclass
class StepResult:
    index: int
    title: str
    passed: bool
    reason: str = ""
    seconds: float = 0.0
    summary: str = ""


@dataclass
class ScenarioResult:
    scenario: Scenario
    steps: list[StepResult] = field(default_factory=list)
    skipped: str | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(s.passed for s in self.steps)

    @property
    def failures(self) -> int:
        return sum(not s.passed for s in self.steps)


def _read(path: Path) -> Any:
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ScenarioError(f"{path}: YAML scenarios need PyYAML (pip install pyyaml)"
                                ) from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ScenarioError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{path}: not valid TOML: {e}") from None


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    p = Path(path)
    try:
        data = _read(p)
    except OSError as e:
        raise ScenarioError(f"{p}: {e.strerror or e}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{p}: a scenario is a table with `steps`")
    problems = [f"{k}: unknown key" for k in data if k not in TOP_KEYS]
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        problems.append("steps: at least one step is required")
        steps = []
    for i, step in enumerate(steps):
        problems += [f"steps[{i}].{msg}" for msg in _step_problems(step)]
    protocol = data.get("protocol")
    if protocol not in (None, "iso", "tgl"):
        problems.append("protocol: must be iso or tgl")
    requires = data.get("requires", [])
    if isinstance(requires, str):
        requires = [requires]
    if problems:
        raise ScenarioError(f"{p}: " + "; ".join(problems))
    return Scenario(name=str(data.get("name", p.stem)), path=str(p), steps=steps,
                    protocol=protocol, requires=tuple(requires),
                    description=str(data.get("description", "")))


def _step_problems(step: Any) -> list[str]:
    if not isinstance(step, dict):
        return ["a step is a table"]
    problems = [f"{k}: unknown key" for k in step if k not in STEP_KEYS]
    kinds = [k for k in ("op", "issue", "points_sweep") if k in step]
    if len(kinds) > 1:
        problems.append("op, issue, points_sweep: one per step")
    if not kinds and "sleep" not in step:
        problems.append("op: a step needs op, issue, points_sweep or sleep")
    sweep_days = step.get("points_sweep")
    if sweep_days is not None and (not isinstance(sweep_days, int) or isinstance(sweep_days, bool)
                                   or sweep_days < 0):
        problems.append("points_sweep: days from now, a whole number from 0")
    if "op" in step:
        try:
            Op(step["op"])
        except ValueError:
            problems.append(f"op: unknown operation {step['op']!r}")
    if "fault" in step and step["fault"] not in FAULTS:
        problems.append(f"fault: one of {', '.join(sorted(FAULTS))}")
    if step.get("fault") == "duplicate_stan" and "same_as" not in step:
        problems.append("same_as: duplicate_stan needs the step whose STAN it reuses")
    expect = step.get("expect", {})
    if not isinstance(expect, dict):
        problems.append("expect: a table")
    else:
        problems += [f"expect.{k}: unknown key" for k in expect if k not in EXPECT_KEYS]
    for key in ("amount",):
        if key in step and not isinstance(step[key], str):
            problems.append(f"{key}: a string in major units, such as \"12.50\"")
    for key in ("balance", "amount"):
        if isinstance(expect, dict) and key in expect and not isinstance(expect[key], str):
            problems.append(f"expect.{key}: a string in major units, such as \"12.50\"")
    original = step.get("original")
    if isinstance(original, dict):
        problems += [f"original.{k}: unknown key" for k in original
                     if k not in ("stan", "id", "time", "op", "amount", "card", "mti")]
        if "stan" not in original and "id" not in original:
            problems.append("original: a table needs stan (ISO) or id (TGL/1)")
    elif original is not None and not isinstance(original, str):
        problems.append("original: a step name, or a table with stan/id")
    if "sleep" in step and not isinstance(step["sleep"], int | float):
        problems.append("sleep: seconds, a number")
    return problems


class Runner:
    """Runs scenarios over one till connection each; never raises for a failing step."""

    def __init__(self, config: Config, target: Target, *, terminal: str | None = None,
                 merchant: str | None = None, timeout: float = 10.0):
        self.config = config
        self.target = target
        self.terminal = terminal
        self.merchant = merchant
        self.timeout = timeout

    def run(self, scenario: Scenario) -> ScenarioResult:
        result = ScenarioResult(scenario)
        missing = [p for p in scenario.requires if p not in self.config.programs]
        if missing:
            result.skipped = f"the config has no program {', '.join(missing)}"
            return result
        started = time.perf_counter()
        state = _State()
        till: Till | None = None
        try:
            till = Till(self.target, terminal=self.terminal, merchant=self.merchant,
                        config=self.config, timeout=self.timeout)
        except (OSError, LinkClosed) as e:
            result.steps.append(StepResult(0, "connect", False,
                                           f"{self.target.describe()}: {e}"))
            return result
        try:
            for i, step in enumerate(scenario.steps, 1):
                result.steps.append(self._step(till, state, i, step))
        finally:
            till.close()
        result.seconds = time.perf_counter() - started
        return result

    def _step(self, till: Till, state: _State, index: int, step: dict[str, Any]) -> StepResult:
        title = _title(step)
        started = time.perf_counter()
        try:
            if "sleep" in step:
                time.sleep(float(step["sleep"]))
            if "issue" in step:
                outcome = self._issue(state, step)
            elif "op" in step:
                outcome = self._operation(till, state, step)
            elif "points_sweep" in step:
                outcome = self._points_sweep(step)
            else:
                outcome = StepResult(index, title, True, summary=f"slept {step['sleep']} s")
        except (ScenarioError, ValueError) as e:
            outcome = StepResult(index, title, False, str(e))
        except (TimeoutError, OSError, LinkClosed) as e:
            outcome = StepResult(index, title, False, f"{type(e).__name__}: {e}")
            _reconnect(till)
        except RuntimeError as e:  # the store could not be reached to issue a card
            outcome = StepResult(index, title, False, str(e).splitlines()[0])
        outcome.index, outcome.title = index, title
        outcome.seconds = time.perf_counter() - started
        return outcome

    def _issue(self, state: _State, step: dict[str, Any]) -> StepResult:
        program = str(step["issue"])
        name = str(step.get("as", "card"))
        card = issue_cards(self.config, program, 1)[0]
        state.vars[name] = card.number
        if card.pin is not None:
            state.vars[f"{name}.pin"] = card.pin
        return StepResult(0, "", True, summary=f"issued a {program} card as ${{{name}}}")

    def _points_sweep(self, step: dict[str, Any]) -> StepResult:
        """The points sweep on the gateway's store as of `points_sweep` days from now (expiry
        and tier reviews, as `tillgate points expire --now` does); `expect.expired` is not
        checked here: the steps after it ask the till."""
        days = int(step["points_sweep"])
        report = sweep_points(self.config, time.time() + days * 86400)
        return StepResult(0, "", True, summary=f"swept {report.cards} cards as of {days} days "
                          f"on: {report.expired} points expired, {report.tier_changes} tier "
                          "changes")

    def _operation(self, till: Till, state: _State, step: dict[str, Any]) -> StepResult:
        call = self._call(till, state, step)
        expect = step.get("expect", {})
        fault = step.get("fault")
        if fault:
            same_as = state.exchange(step["same_as"]) if "same_as" in step else None
            outcome = run_fault(fault, till, call, same_as=same_as)
        else:
            outcome = FaultOutcome(exchange=till.request(call))
        if step.get("name") and outcome.exchange is not None:
            state.exchanges[str(step["name"])] = outcome.original or outcome.exchange
        problems = list(outcome.problems) + _check(expect, outcome)
        for var, what in step.get("capture", {}).items():
            value = outcome.exchange.value(what) if outcome.exchange else None
            if value is None:
                problems.append(f"capture {var}: the step has no {what!r}")
            else:
                state.vars[str(var)] = value
        return StepResult(0, "", not problems, "; ".join(problems), summary=_summary(outcome))

    def _original(self, till: Till, state: _State, step: dict[str, Any]) -> Exchange:
        """`original = "step"` names an earlier step; `original = { stan = "${sale_stan}",
        time = "${sale.7}", op = "redeem", amount = "22.00" }` (ISO) or `{ id = "..." }`
        (TGL/1) rebuilds it from captured values, as a till that wrote them down would."""
        spec = step["original"]
        if isinstance(spec, str):
            return state.exchange(spec)
        op = Op(state.expand(spec.get("op", "redeem")))
        amount = parse_amount(state.expand(spec["amount"])) if "amount" in spec else None
        card = state.expand(spec["card"]) if "card" in spec else (
            state.expand(step["card"]) if "card" in step else None)
        seq = state.expand(spec.get("id", spec.get("stan", "")))
        return original_exchange(
            till.dialect.name, seq=seq, terminal=till.terminal, merchant=till.merchant,
            card=card, amount=amount, op=op, mti=state.expand(spec.get("mti", "0200")),
            transmitted=state.expand(spec["time"]) if "time" in spec else None)

    def _call(self, till: Till, state: _State, step: dict[str, Any]) -> Call:
        def text(key: str) -> str | None:
            return state.expand(step[key]) if key in step else None

        op = Op(step["op"])
        amount = parse_amount(state.expand(step["amount"])) if "amount" in step else None
        if "points" in step:
            amount = int(state.expand(str(step["points"])))
        original = self._original(till, state, step) if "original" in step else None
        card = text("card")
        if card is None and original is not None:
            card = original.call.card
        if amount is None and op is Op.VOID and original is not None:
            amount = original.call.amount
        return Call(op=op, card=card, amount=amount, track2=text("track2"),
                    track1=text("track1"), swipe=text("swipe"), barcode=text("barcode"),
                    pin=text("pin"), invoice=text("invoice"),
                    operator=text("operator"), partial=bool(step.get("partial", False)),
                    reward=text("reward"), target=text("target"), mti=text("mti"),
                    original=original)


class _State:
    def __init__(self) -> None:
        # ${run}: unique per run, for values that must not repeat across runs (invoice numbers).
        run = f"{int(time.time()) % 10**8:08d}{os.getpid() % 1000:03d}"
        self.vars: dict[str, str] = {"run": run}
        self.exchanges: dict[str, Exchange] = {}

    def exchange(self, name: str) -> Exchange:
        try:
            return self.exchanges[name]
        except KeyError:
            raise ScenarioError(f"no earlier step named {name!r}") from None

    def expand(self, value: object) -> str:
        return _VAR.sub(lambda m: self.lookup(m.group(1)), str(value))

    def lookup(self, name: str) -> str:
        if name in self.vars:
            return self.vars[name]
        step, _, what = name.partition(".")
        if step in self.exchanges and what:
            value = self.exchanges[step].value(what)
            if value is not None:
                return value
        raise ScenarioError(f"${{{name}}} is not defined by an earlier step")


def _reconnect(till: Till) -> None:
    try:
        till.reconnect()
    except (OSError, LinkClosed):
        pass


def _check(expect: dict[str, Any], outcome: FaultOutcome) -> list[str]:
    problems = []
    if "closed" in expect and bool(expect["closed"]) != outcome.closed:
        problems.append(f"expected the connection {'closed' if expect['closed'] else 'open'}")
    reply = outcome.exchange.reply if outcome.exchange is not None else None
    wanted = {k: v for k, v in expect.items() if k != "closed"}
    if not wanted:
        return problems
    if reply is None:
        return problems + [f"expected {_show(wanted)}, got no response"]
    if "rc" in wanted:
        codes = wanted["rc"] if isinstance(wanted["rc"], list) else [wanted["rc"]]
        if reply.rc not in [str(c) for c in codes]:
            problems.append(f"expected rc {'/'.join(map(str, codes))}, got {reply.rc}")
    for key in ("balance", "amount"):
        if key in wanted:
            want = parse_amount(wanted[key])
            got = getattr(reply, key)
            if got != want:
                shown = "none" if got is None else format_amount(got)
                problems.append(f"expected {key} {wanted[key]}, got {shown}")
    if "points" in wanted and reply.points != int(wanted["points"]):
        problems.append(f"expected points {wanted['points']}, got {reply.points}")
    if "auth" in wanted and bool(wanted["auth"]) != bool(reply.auth):
        problems.append("expected an auth id" if wanted["auth"] else "expected no auth id")
    if "tier" in wanted and reply.tier != str(wanted["tier"]):
        problems.append(f"expected tier {wanted['tier']}, got {reply.tier}")
    if "message" in wanted and str(wanted["message"]) not in (reply.message or ""):
        problems.append(f"expected message {wanted['message']!r}, got {reply.message!r}")
    return problems


def _show(expect: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in expect.items())


def _title(step: dict[str, Any]) -> str:
    if "issue" in step:
        return f"issue {step['issue']} as {step.get('as', 'card')}"
    if "points_sweep" in step:
        return f"points sweep {step['points_sweep']} days on"
    if "op" not in step:
        return f"sleep {step.get('sleep')}"
    title = str(step["op"])
    if step.get("fault"):
        title += f" [{step['fault']}]"
    if step.get("name"):
        title += f" ({step['name']})"
    return title


def _summary(outcome: FaultOutcome) -> str:
    parts = []
    reply = outcome.exchange.reply if outcome.exchange is not None else None
    if reply is not None:
        parts.append(f"rc {reply.rc}")
        if reply.balance is not None:
            parts.append(f"balance {format_amount(reply.balance)}")
        if reply.points is not None:
            parts.append(f"points {reply.points}")
    if outcome.closed:
        parts.append("connection closed")
    if outcome.note:
        parts.append(outcome.note)
    return ", ".join(parts)


def render_text(results: list[ScenarioResult]) -> str:
    lines = []
    for r in results:
        head = f"scenario {r.scenario.name} ({r.scenario.path})"
        if r.skipped:
            lines.append(f"{head}: SKIPPED, {r.skipped}")
            continue
        lines.append(head)
        for s in r.steps:
            mark = "PASS" if s.passed else "FAIL"
            detail = s.summary if s.passed else s.reason
            lines.append(f"  {mark} {s.index:>3} {s.title:<32} {detail}")
    steps = [s for r in results for s in r.steps]
    failed = sum(not s.passed for s in steps)
    skipped = sum(1 for r in results if r.skipped)
    scen_failed = sum(1 for r in results if not r.skipped and not r.passed)
    lines.append(f"{len(results)} scenarios ({scen_failed} failed, {skipped} skipped), "
                 f"{len(steps)} steps, {len(steps) - failed} passed, {failed} failed")
    return "\n".join(lines)
