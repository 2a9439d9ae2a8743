"""Run a procedure file: its `main` in a thread of its own, the ground segment on the loop.

The procedure's blocking calls (groundctl.procedures.api) hand coroutines to the event
loop and wait for them, so the engine, links and commander go on receiving and
verifying while the procedure waits. Every step is printed and archived
(`procedure_runs`, `procedure_log`), with the run's outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import inspect
import sys
import threading
import time
import traceback
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from groundctl.archive.commands import Actor, CommandStore
from groundctl.commanding.roles import check_confirmation, check_role
from groundctl.commanding.syntax import parse, validate
from groundctl.errors import GroundctlError, ProcedureError
from groundctl.mdb.expr import ExpressionError, compile_expression
from groundctl.mdb.model import Mission
from groundctl.procedures import api
from groundctl.procedures.api import CheckFailed, CommandResult, ContactInfo
from groundctl.telemetry.model import Event

if TYPE_CHECKING:
    from groundctl.config import Config
    from groundctl.orbits.model import Pass
    from groundctl.session import Session

T = TypeVar("T")
POLL_S = 0.02  # wall seconds between looks at the clock and telemetry while waiting
DEFAULT_PASS_TIMEOUT_S = 86400.0


class Interrupted(BaseException):
    """The run was stopped (Ctrl-C); a BaseException so `except Exception` in a
    procedure does not swallow it."""


@dataclass(frozen=True)
class RunResult:
    run_id: int
    status: str  # passed, failed, error, interrupted
    message: str

    @property
    def exit_code(self) -> int:
        return 0 if self.status == "passed" else 1


def load_procedure(path: Path) -> tuple[Callable[..., Any], str]:
    """Import the procedure file and return its `main` and the file's SHA-256.

    ProcedureError for a missing file, a syntax error (file:line) or no `main`.
    """
    try:
        source = path.read_bytes()
    except OSError as error:
        raise ProcedureError(f"cannot read procedure {path}: {error.strerror or error}") from None
    digest = hashlib.sha256(source).hexdigest()
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as error:
        raise ProcedureError(
            f"{path}:{error.lineno}: {error.msg}", hint="fix the procedure's Python syntax"
        ) from None
    name = f"groundctl_procedure_{digest[:12]}"
    spec = importlib.util.spec_from_loader(name, loader=None, origin=str(path))
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    module.__file__ = str(path)
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except Exception as error:
        raise ProcedureError(
            f"{path}: loading the procedure raised {type(error).__name__}: {error}",
            hint=_procedure_frames(error, path),
        ) from None
    main = getattr(module, "main", None)
    if not callable(main):
        raise ProcedureError(
            f"{path}: no main() function",
            hint="a procedure defines def main(...) -> None; its parameters are its arguments",
        )
    return main, digest


def bind_arguments(
    main: Callable[..., Any], given: Mapping[str, str], path: Path
) -> dict[str, Any]:
    """`--arg name=value` texts converted to `main`'s annotated parameter types."""
    signature = inspect.signature(main)
    try:
        hints = typing.get_type_hints(main)
    except Exception:  # unresolvable annotations: take them as text
        hints = {}
    params = signature.parameters
    unknown = [n for n in given if n not in params]
    if unknown:
        described = ", ".join(_describe_param(p, hints) for p in params.values()) or "none"
        raise ProcedureError(
            f"{path}: no argument {unknown[0]!r}", hint=f"its arguments: {described}"
        )
    values: dict[str, Any] = {}
    for name, p in params.items():
        if name not in given:
            if p.default is inspect.Parameter.empty:
                raise ProcedureError(
                    f"{path}: argument {name!r} is required",
                    hint=f"give it with -a {name}=VALUE",
                )
            continue
        values[name] = _convert(name, given[name], hints.get(name, str), path)
    return values


def _describe_param(p: inspect.Parameter, hints: Mapping[str, Any]) -> str:
    kind = getattr(hints.get(p.name), "__name__", "str")
    default = "" if p.default is inspect.Parameter.empty else f"={p.default!r}"
    return f"{p.name}: {kind}{default}"


def _convert(name: str, text: str, kind: Any, path: Path) -> Any:
    try:
        if kind is bool:
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if kind in (int, float):
            return kind(text)
    except ValueError:
        expected = getattr(kind, "__name__", str(kind))
        raise ProcedureError(f"{path}: argument {name}: {text!r} is not a {expected}") from None
    return text


def _procedure_frames(error: BaseException, path: Path) -> str:
    """The traceback lines inside the procedure file (where its author should look)."""
    frames = [
        f"{Path(f.filename).name}:{f.lineno}: {f.line}"
        for f in traceback.extract_tb(error.__traceback__)
        if f.filename == str(path)
    ]
    return " <- ".join(reversed(frames)) if frames else ""


class ProcedureRunner:
    """One run of one procedure file.

    `session` is the running ground segment (None for a dry run: commands and checks are
    validated against `config`'s mission databases only). `out` prints a line.
    """

    def __init__(
        self,
        path: str | Path,
        arguments: Mapping[str, str],
        *,
        config: Config,
        archive_path: str | Path,
        session: Session | None = None,
        dry_run: bool = False,
        operator: str | None = None,
        role: str | None = None,
        out: Callable[[str], None] = print,
        poll_s: float = POLL_S,
    ) -> None:
        from groundctl.commander import login_name

        self.path = Path(path)
        self.given = dict(arguments)
        self.config = config
        self.session = session
        self.dry_run = dry_run or session is None
        operator = operator or login_name()
        self.actor = Actor(operator, role or config.commanding.role_of(operator))
        self.out = out
        self.poll_s = poll_s
        self.store = CommandStore(archive_path)
        self.run_id = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._interrupted = threading.Event()
        self._start_s = 0.0
        self._missions: tuple[dict[str, Mission], Mission | None] | None = None
        self._fleet_names: set[str] | None = None

    # --- running -----------------------------------------------------------------------------
    def clock(self) -> float:
        if self.session is not None and self.session.engine is not None:
            return self.session.engine.clock()
        return time.time()

    def interrupt(self) -> None:
        """Stop the run at the procedure's next API call (Ctrl-C)."""
        self._interrupted.set()

    async def run(self) -> RunResult:
        """Load, run and archive the procedure; never raises for what the procedure does."""
        self.loop = asyncio.get_running_loop()
        await self.store.aopen()
        try:
            return await self._run()
        finally:
            await self.store.aclose()

    async def _run(self) -> RunResult:
        main, digest = await asyncio.to_thread(load_procedure, self.path)
        kwargs = bind_arguments(main, self.given, self.path)
        self._start_s = self.clock()
        self.run_id = await self.store.call(
            self.store.start_run,
            name=self.path.stem,
            path=str(self.path),
            sha256=digest,
            arguments=kwargs,
            actor=self.actor,
            dry_run=self.dry_run,
            time_s=self._start_s,
        )
        mode = " (dry run: nothing is sent)" if self.dry_run else ""
        await self._step("step", f"run {self.run_id}: {self.path.name}{_args_text(kwargs)}{mode}")
        status, message = await asyncio.to_thread(self._thread, main, kwargs)
        if status != "passed" and self.session is not None and self.session.commander:
            # what the run queued must not go out after it stopped
            left = await self.session.commander.cancel_source(
                f"procedure:{self.run_id}", f"procedure run {self.run_id} {status}"
            )
            if left:
                ids = ", ".join(str(i) for i in left)
                await self._step("step", f"cancelled the run's queued commands: {ids}")
        await self._step(
            "error" if status != "passed" else "step", f"{status}: {message}", status == "passed"
        )
        await self.store.call(
            self.store.end_run, self.run_id, self.clock(), status, message, self.actor
        )
        return RunResult(self.run_id, status, message)

    def _thread(self, main: Callable[..., Any], kwargs: dict[str, Any]) -> tuple[str, str]:
        api._bind(self)
        try:
            main(**kwargs)
        except CheckFailed as failed:
            return "failed", str(failed)
        except Interrupted:
            return "interrupted", "stopped by the operator"
        except GroundctlError as error:
            where = _procedure_frames(error, self.path)
            hint = f" ({error.hint})" if error.hint else ""
            return "failed", error.message + hint + (f" (at {where})" if where else "")
        except Exception as error:
            where = _procedure_frames(error, self.path)
            return "error", f"{type(error).__name__}: {error}" + (f" (at {where})" if where else "")
        finally:
            api._bind(None)
        return "passed", "all steps passed"

    # --- from the procedure's thread -------------------------------------------------------------
    def _call(self, coroutine: Awaitable[T]) -> T:
        if self._interrupted.is_set():
            if inspect.iscoroutine(coroutine):
                coroutine.close()
            raise Interrupted()
        assert self.loop is not None
        future = asyncio.run_coroutine_threadsafe(_as_coroutine(coroutine), self.loop)
        while True:
            try:
                return future.result(timeout=0.1)
            except TimeoutError:
                if self._interrupted.is_set():
                    future.cancel()
                    raise Interrupted() from None

    def cmd(
        self,
        text: str,
        *,
        confirm: bool,
        wait: bool,
        timeout: float | None,
        at: datetime | None,
        check: bool,
    ) -> CommandResult:
        return self._call(self._cmd(text, confirm, wait, timeout, at, check))

    def tlm(self, parameter: str, default: Any) -> Any:
        return self._call(self._tlm(parameter, default))

    def wait_check(self, check: str, timeout: float) -> None:
        self._call(self._wait_check(check, timeout))

    def wait_pass(self, node: str, station: str | None, timeout: float | None) -> ContactInfo:
        return self._call(self._wait_pass(node, station, timeout))

    def wait(self, seconds: float) -> None:
        self._call(self._wait(seconds))

    def alert(self, text: str, severity: str) -> None:
        self._call(self._alert(text, severity))

    def log(self, text: str) -> None:
        self._call(self._step("log", text))

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def contacts(self, node: str | None, hours: float) -> list[Pass]:
        return self._call(self._contacts(node, hours))

    # --- on the loop -----------------------------------------------------------------------------
    async def _step(self, kind: str, text: str, ok: bool | None = None) -> None:
        elapsed = max(0.0, self.clock() - self._start_s)
        stamp = str(timedelta(seconds=int(elapsed)))
        self.out(f"[+{stamp}] {text}")
        if self.run_id:
            await self.store.call(self.store.log, self.run_id, self.clock(), kind, text, ok)

    def _mission(self, node: str) -> Mission:
        if self.session is not None and self.session.commander is not None:
            from groundctl.errors import CommandError

            try:
                return self.session.commander.mission_of(node)
            except CommandError as error:
                raise ProcedureError(error.message, hint=error.hint) from None
        if self._missions is None:
            from groundctl.session import load_missions

            self._missions = load_missions(self.config, sorted(self.config.nodes))
        missions, default = self._missions
        mission = missions.get(node, default)
        if mission is None:
            raise ProcedureError(f"{node}: no mission database for this node")
        return mission

    async def _cmd(
        self,
        text: str,
        confirm: bool,
        wait: bool,
        timeout: float | None,
        at: datetime | None,
        check: bool,
    ) -> CommandResult:
        line = parse(text)
        actor = Actor(f"{self.actor.operator}", self.actor.role)
        if self.dry_run or self.session is None or self.session.commander is None:
            await self._known_node(line.node)
            valid = validate(line, self._mission(line.node))
            check_role(actor.role, actor.operator, valid.text, valid.hazardous)
            check_confirmation(valid.text, valid.name, valid.hazardous, confirm)
            await self._step("command", f"cmd {valid.text}: valid", True)
            return CommandResult(None, valid.text, "validated")
        commander = self.session.commander
        outcome = await commander.issue(
            line,
            confirm=confirm,
            at=_utc(at).timestamp() if at is not None else None,
            source=f"procedure:{self.run_id}",
            actor=actor,
        )
        await self._step("command", f"cmd {outcome.text} (command {outcome.command_id})")
        if not wait:
            return CommandResult(outcome.command_id, outcome.text, outcome.stage)
        deadline = None if timeout is None else self.clock() + timeout
        while not outcome.done.is_set():
            if deadline is not None and self.clock() >= deadline:
                result = _result(outcome)
                message = (
                    f"{outcome.text}: not verified within {timeout:g} s (stage {outcome.stage})"
                )
                await self._step("command", message, False)
                if check:
                    raise CheckFailed(message)
                return result
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(outcome.done.wait(), self.poll_s)
        result = _result(outcome)
        detail = f" ({outcome.detail})" if outcome.detail else ""
        await self._step("command", f"cmd {outcome.text}: {outcome.stage}{detail}", result.ok)
        if check and not result.ok:
            raise CheckFailed(f"{outcome.text}: {outcome.stage}{detail}")
        return result

    async def _known_node(self, node: str) -> None:
        """ProcedureError unless `node` is configured or in the fleet (dry runs: a live
        run's commander refuses a node no link reaches)."""
        if self._fleet_names is None:

            def names() -> set[str]:
                from groundctl.fleet import load_fleet

                try:
                    fleet = load_fleet(self.config)
                except GroundctlError:
                    return set()
                return set(fleet.names())

            self._fleet_names = await asyncio.to_thread(names)
        known = self._fleet_names | set(self.config.nodes)
        known |= {link.node for link in self.config.links.values()}
        if node not in known:
            hint = ", ".join(sorted(known)[:12]) or "none"
            raise ProcedureError(
                f"{node}: no such node in the config or the fleet", hint=f"nodes: {hint}"
            )

    def _split(self, text: str, what: str) -> tuple[str, str]:
        node, dot, rest = text.strip().partition(".")
        if not dot or not node or not rest:
            raise ProcedureError(
                f"{what} {text!r}: expected NODE.PARAMETER or NODE.EXPRESSION",
                hint='e.g. "ODC-07.BATT_SOC" or "ODC-07.BATT_SOC > 40"',
            )
        return node, rest

    def _names(self, node: str) -> set[str]:
        mission = self._mission(node)
        names = {d.name for d in mission.derived}
        for p in mission.packets.values():
            for f in p.fields:
                names.add(f"{p.name}.{f.name}")
                names.add(f.name)
        return names

    def _qualify(self, node: str, name: str) -> str:
        """PACKET.FIELD for a field name (the first packet that has it), or the name."""
        if "." in name:
            return name
        for p in self._mission(node).packets.values():
            if any(f.name == name for f in p.fields):
                return f"{p.name}.{name}"
        return name

    def _values(self, node: str) -> dict[str, Any]:
        if self.session is None or self.session.commander is None:
            return {}
        values = self.session.commander.latest_values.get(node, {})
        env = dict(values)
        for name, value in values.items():
            env.setdefault(name.rsplit(".", 1)[-1], value)
        return env

    async def _tlm(self, parameter: str, default: Any) -> Any:
        node, name = self._split(parameter, "tlm")
        if name not in self._names(node):
            raise ProcedureError(f"tlm {parameter!r}: {node}'s mission database has no {name}")
        env = self._values(node)
        if name in env:
            return env[name]
        if self.dry_run:
            archived = await self.store.call(
                self.store.latest_value, node, self._qualify(node, name)
            )
            if archived is not None:
                return archived
            return None if default is ProcedureError else default
        if default is not ProcedureError:
            return default
        raise ProcedureError(f"tlm {parameter!r}: {node} has sent no {name} yet")

    async def _wait_check(self, check: str, timeout: float) -> None:
        node, text = self._split(check, "wait_check")
        try:
            expression = compile_expression(text)
        except ExpressionError as error:
            raise ProcedureError(f"wait_check {check!r}: {error}") from None
        known = self._names(node)
        unknown = sorted(n for n in expression.names if n not in known)
        if unknown:
            raise ProcedureError(
                f"wait_check {check!r}: {node}'s mission database has no {unknown[0]}"
            )
        if self.dry_run:
            await self._step("check", f"wait_check {check}: valid", True)
            return
        deadline = self.clock() + timeout
        while True:
            env = self._values(node)
            try:
                if expression.evaluate(env):
                    seen = _seen(expression.names, env)
                    await self._step("check", f"wait_check {check}: ok ({seen})", True)
                    return
            except (KeyError, ArithmeticError, TypeError, ValueError):
                pass
            if self.clock() >= deadline:
                seen = _seen(expression.names, env)
                message = f"wait_check {check}: not true within {timeout:g} s ({seen})"
                await self._step("check", message, False)
                raise CheckFailed(message)
            await asyncio.sleep(self.poll_s)

    async def _wait_pass(
        self, node: str, station: str | None, timeout: float | None
    ) -> ContactInfo:
        if station is not None:
            try:
                station = self.config.station(station).name
            except GroundctlError as error:
                raise ProcedureError(error.message, hint=error.hint) from None
        where = f" at {station}" if station else ""
        if self.dry_run or self.session is None or self.session.commander is None:
            self._mission(node)
            await self._step("step", f"wait_pass {node}{where}: skipped in a dry run")
            return ContactInfo(node, station, None, None)
        commander = self.session.commander
        link = commander.link_for(node)
        if link is None:
            raise ProcedureError(f"wait_pass {node}: no link reaches {node}")
        limit = DEFAULT_PASS_TIMEOUT_S if timeout is None else timeout
        deadline = self.clock() + limit
        announced = False
        while True:
            contact = link.current_contact(node)
            here = contact.station if contact is not None else None
            if link.in_contact(node) and (station is None or here == station):
                info = ContactInfo(
                    node,
                    here,
                    contact.aos if contact is not None else None,
                    contact.los if contact is not None else None,
                )
                los = f", LOS {info.los:%H:%M:%S}Z" if info.los else ""
                await self._step(
                    "step",
                    f"wait_pass {node}{where}: in contact{' with ' + here if here else ''}{los}",
                )
                return info
            if not announced:
                aos = link.next_contact(node)
                when = f" (next AOS {datetime.fromtimestamp(aos, UTC):%H:%M:%S}Z)" if aos else ""
                await self._step("step", f"wait_pass {node}{where}: waiting{when}")
                announced = True
            if self.clock() >= deadline:
                message = f"wait_pass {node}{where}: no contact within {limit:g} s"
                await self._step("check", message, False)
                raise CheckFailed(message)
            await asyncio.sleep(self.poll_s)

    async def _wait(self, seconds: float) -> None:
        if seconds < 0:
            raise ProcedureError(f"wait({seconds}): seconds must be 0 or more")
        await self._step("step", f"wait {seconds:.0f} s")
        if self.dry_run:
            return
        end = self.clock() + seconds
        while self.clock() < end:
            await asyncio.sleep(self.poll_s)

    async def _alert(self, text: str, severity: str) -> None:
        severity = severity.upper()
        if severity not in ("INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ProcedureError(
                f"alert severity {severity!r}: expected INFO, WARNING, ERROR or CRITICAL"
            )
        await self._step("alert", f"ALERT {severity}: {text}")
        if self.session is not None and self.session.engine is not None and not self.dry_run:
            self.session.engine.note(
                Event(
                    self.clock(),
                    f"procedure:{self.run_id}",
                    "ground",
                    "procedure-alert",
                    severity,
                    text,
                )
            )

    async def _contacts(self, node: str | None, hours: float) -> list[Pass]:
        from groundctl.session import contact_plan

        start = datetime.fromtimestamp(self.clock(), UTC)
        links = self.session.links if self.session is not None else []
        plan = await contact_plan(self.config, links, start, start + timedelta(hours=hours))
        return [p for p in plan if node is None or p.node == node]


def _utc(t: datetime) -> datetime:
    """A time without a zone is UTC (as everywhere in groundctl)."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def _result(outcome: Any) -> CommandResult:
    return CommandResult(
        outcome.command_id,
        outcome.text,
        outcome.stage,
        outcome.detail,
        [(s.stage, s.time_s, s.detail) for s in outcome.stages],
    )


def _seen(names: frozenset[str], env: Mapping[str, Any]) -> str:
    parts = [f"{n} = {env[n]!r}" if n in env else f"{n}: no value yet" for n in sorted(names)]
    return ", ".join(parts)


def _args_text(kwargs: Mapping[str, Any]) -> str:
    return (" " + " ".join(f"{k}={v}" for k, v in kwargs.items())) if kwargs else ""


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable
