"""pytest plugin `tillgate` (entry point `pytest11`): a private gateway and a till for your tests.

Installed with tillgate, it is active in every pytest run; nothing starts until a test asks for a
fixture. Fixtures:

- `tillgate_gateway` (session): a real `tillgate serve` subprocess on free loopback ports with its
  own embedded redis-server, started from `tillgate_base_config` plus `tillgate_extra_config`.
- `till` / `tgl_till`: a blocking `Till` on that gateway speaking ISO 8583 / TGL/1, with one
  method per operation (`activate`, `redeem`, `void`, ...) and `new_card(program, balance)`.
- `tillgate_gateway_factory`: start further private gateways with their own config in one test.
- `tillgate_inprocess_factory`: `await start(redis_url=None, extra="", **listener_overrides)`
  runs a gateway inside the test process on the running Twisted asyncio reactor (for suites on
  pytest-twisted with `--reactor=asyncio`); stopped after the test. Without `redis_url` it uses a
  private redis-server started once per session (`tillgate_redis_url`).
- `tillgate_sentinel`: a private primary + replica + Sentinel for one test (a test may kill the
  primary); its `.url` is the `redis+sentinel://` URL to give a gateway.
- `tillgate_cluster_url` (session): a private Redis Cluster (3 primaries, 3 replicas) started on
  first use; pass it as `redis_url` to run a gateway on the cluster (`tillgate_cluster`: the
  cluster itself, to reshard it).
- `tillgate_base_config`, `tillgate_extra_config` (session): override them in your conftest.py
  to run against your configuration (defaults: ini options `tillgate_config` / `tillgate_extra`,
  else tillgate's default config of HOST-SPEC 6).

It needs no pytest-twisted and no event loop: the gateway runs in its own process and the till
is blocking. See docs/simulator.md for a complete example test.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from gateway.config.model import Config
    from gateway.embedded_cluster import EmbeddedCluster
    from gateway.embedded_sentinel import LocalSentinelSet
    from gateway.sim.issuer import IssuedCard
    from gateway.testing import GatewayProcess



def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("tillgate_config", "base configuration for the tillgate_gateway fixture "
                  "(default: tillgate's config/tillgate.toml)", default="")
    parser.addini("tillgate_extra", "TOML appended to the tillgate_gateway configuration",
                  default="")


def default_base_config() -> Path:
    """tillgate's own default config (gateway.config.defaults): beside the package in a source
    checkout, else the copy an installed wheel carries (gateway/defaults/config)."""
    from gateway.config.defaults import builtin_config_path

    return builtin_config_path()


class RunningGateway:
    """A started private gateway: its config, ports, tills and cards."""

    def __init__(self, process: GatewayProcess):
        from gateway.config.model import load_config

        self.process = process
        self.config: Config = load_config(process.config_path)
        self.ports = process.ports
        self.config_path = process.config_path

    def till(self, protocol: str = "iso", **options: Any) -> Any:
        """A connected till on the gateway's first `iso` or `tgl` (TGL/1) listener."""
        from gateway.sim.target import target_from_config

        return make_test_till(self, target_from_config(self.config, protocol),
                              config=self.config, **options)

    def issue_card(self, program: str = "gift") -> IssuedCard:
        """A new card of `program` in the gateway's store, status `issued` (PIN if required)."""
        from gateway.sim.issuer import issue_cards

        return issue_cards(self.config, program, 1)[0]

    def card_state(self, card: str) -> dict[str, object] | None:
        """What `tillgate cards show --json` prints for the card (number masked), or None."""
        from gateway.sim.issuer import card_state

        return card_state(self.config, card)

    @property
    def log(self) -> str:
        return self.process.log

    def stop(self) -> int:
        return self.process.stop()


def _test_till_class() -> type:
    from gateway.sim.till import Till

    class _TestTill(Till):
        """A `Till` that can also issue cards in its gateway (`new_card`)."""

        def __init__(self, gateway: RunningGateway, target: Any, **options: Any):
            super().__init__(target, **options)
            self.gateway = gateway

        def new_card(self, program: str = "gift", balance: int | None = None) -> IssuedCard:
            """Issue a card; with `balance` (minor units, or points for loyalty) also activate
            it over this till, checking the activation was approved."""
            card = self.gateway.issue_card(program)
            if balance is not None:
                prog = self.gateway.config.programs[program]
                invoice = f"ACT{card.number[-8:]}" if prog.invoice_required else None
                if prog.is_loyalty:
                    done = self.activate(card.number, 0)
                    if done.reply is not None and done.reply.approved and balance:
                        done = self.add_points(card.number, balance)
                else:
                    done = self.activate(card.number, balance, invoice=invoice)
                rc = done.reply.rc if done.reply else None
                if rc not in ("00", "10"):
                    raise AssertionError(f"activating a new {program} card was answered {rc}")
            return card

    return _TestTill


def make_test_till(gateway: RunningGateway, target: Any, **options: Any) -> Any:
    """The till class is built on first use: importing the plugin (which pytest does in every
    project where tillgate is installed) must not import the simulator."""
    return _test_till_class()(gateway, target, **options)


def start_gateway(workdir: Path, base: str | os.PathLike[str], extra: str = "",
                  timeout: float = 30.0) -> RunningGateway:
    from gateway.testing import GatewayProcess

    process = GatewayProcess.prepare(workdir, base=base, extra=extra)
    try:
        process.start(timeout=timeout)
    except BaseException:
        process.stop()
        raise
    return RunningGateway(process)


@pytest.fixture(scope="session")
def tillgate_base_config(pytestconfig: pytest.Config) -> Path:
    """The configuration the session gateway starts from; override to use your own."""
    configured = pytestconfig.getini("tillgate_config")
    path = Path(configured).resolve() if configured else default_base_config()
    if not path.is_file():
        raise pytest.UsageError(
            f"tillgate: no configuration at {path}; set the ini option tillgate_config, or "
            "override the tillgate_base_config fixture")
    return path


@pytest.fixture(scope="session")
def tillgate_extra_config(pytestconfig: pytest.Config) -> str:
    """TOML appended to the base configuration (extra merchants, programs, listeners)."""
    return str(pytestconfig.getini("tillgate_extra"))


@pytest.fixture(scope="session")
def tillgate_gateway(tmp_path_factory: pytest.TempPathFactory, tillgate_base_config: Path,
                     tillgate_extra_config: str) -> Iterator[RunningGateway]:
    """One private gateway for the session (cards are fresh per test, so tests stay apart)."""
    gateway = start_gateway(tmp_path_factory.mktemp("tillgate"), tillgate_base_config,
                            tillgate_extra_config)
    yield gateway
    gateway.stop()


@pytest.fixture
def tillgate_gateway_factory(tmp_path_factory: pytest.TempPathFactory, tillgate_base_config: Path
                             ) -> Iterator[Callable[..., RunningGateway]]:
    """`start(extra="", base=None)`: more private gateways, each stopped after the test."""
    started: list[RunningGateway] = []

    def start(extra: str = "", base: str | os.PathLike[str] | None = None) -> RunningGateway:
        gateway = start_gateway(tmp_path_factory.mktemp("tillgate"),
                                base or tillgate_base_config, extra)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


@pytest.fixture(scope="session")
def tillgate_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server for in-process gateways (started on first use)."""
    from gateway.embedded_redis import EmbeddedRedis, free_port

    server = EmbeddedRedis(tmp_path_factory.mktemp("tillgate-redis"), port=free_port(),
                           appendonly=False)
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def tillgate_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSentinelSet]:
    """A private primary, replica and Sentinel (gateway/embedded_sentinel.py), for one test:
    a test may kill its primary. `.url` is the redis+sentinel:// URL for `redis.url`."""
    from gateway.embedded_sentinel import LocalSentinelSet

    nodes = LocalSentinelSet(tmp_path_factory.mktemp("tillgate-sentinel"))
    nodes.start()
    yield nodes
    nodes.stop()


@pytest.fixture(scope="session")
def tillgate_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster]:
    """A private Redis Cluster, 3 primaries and 3 replicas on loopback ports (started on first
    use, once per session; gateway/embedded_cluster.py), with its nodes for tests that
    reshard it."""
    from gateway.embedded_cluster import EmbeddedCluster

    cluster = EmbeddedCluster(tmp_path_factory.mktemp("tillgate-cluster"))
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def tillgate_cluster_url(tillgate_cluster: EmbeddedCluster) -> str:
    """The session cluster's `redis+cluster://...` URL, for in-process gateways and stores."""
    return tillgate_cluster.url


class InProcessGateway:
    """A `gateway.app.Gateway` running in the test process, and what tests need of it."""

    def __init__(self, gateway: Any):
        self.gateway = gateway
        self.config = gateway.config

    def port(self, listener: str | None = None) -> int:
        """The bound port of the listener named `listener` (default: the first one)."""
        for service, conf in zip(self.gateway.listeners, self.config.listeners):
            if listener is None or conf.name == listener:
                return int(service.bound_port)
        raise KeyError(listener)


@pytest.fixture
def tillgate_inprocess_factory(request: pytest.FixtureRequest, tmp_path: Path,
                               tillgate_base_config: Path) -> Iterator[Callable[..., Any]]:
    """`await start(redis_url=None, extra="", redis_settings=None, **listener_overrides)
    -> InProcessGateway`.

    `redis_settings` are added to `[redis]` (e.g. `acknowledge_after_replicas`).
    `listener_overrides` change the first listener (e.g. `framing="tpdu"`, `max_in_flight=1`).
    Needs a running asyncio Twisted reactor (pytest-twisted, `--reactor=asyncio`).
    """
    started: list[Any] = []

    async def start(redis_url: str | None = None, extra: str = "",
                    redis_settings: dict[str, Any] | None = None,
                    **listener_overrides: Any) -> InProcessGateway:
        import tomllib

        from twisted.internet import reactor

        from gateway.app import Gateway
        from gateway.config.model import parse_config
        from gateway.embedded_redis import free_port
        from gateway.testing import config_text

        url = redis_url or request.getfixturevalue("tillgate_redis_url")
        workdir = tmp_path / f"gateway{len(started)}"
        ports = {"iso": free_port(), "line": free_port(), "http": free_port()}
        data = tomllib.loads(config_text(tillgate_base_config, data_dir=str(workdir / "var"),
                                         ports=ports, redis_url=url, extra=extra))
        data["listeners"][0].update(listener_overrides)
        data.setdefault("redis", {}).update(redis_settings or {})
        gateway = Gateway(reactor, parse_config(data, "tillgate_inprocess_factory"))
        await gateway.start()
        started.append(gateway)
        return InProcessGateway(gateway)

    yield start
    if started:
        import pytest_twisted
        from twisted.internet.defer import ensureDeferred

        for gateway in reversed(started):
            pytest_twisted.blockon(ensureDeferred(gateway.stop()))


@pytest.fixture
def till(tillgate_gateway: RunningGateway) -> Iterator[Any]:
    """An ISO 8583 till (TILL0001 of STORE0000000001 on the default config)."""
    with tillgate_gateway.till("iso") as t:
        yield t


@pytest.fixture
def tgl_till(tillgate_gateway: RunningGateway) -> Iterator[Any]:
    """A TGL/1 till on the gateway's line listener."""
    with tillgate_gateway.till("tgl") as t:
        yield t
