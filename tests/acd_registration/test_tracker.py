"""The ACD's registration tracker against the simulator over TCP: the events it listens to
come off a real ESL connection, parsed by the project's parser, and its doubts go to the
switch as ``sofia_contact``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from acd.registration import SUBSCRIPTION, RegistrationTracker, contact_key
from esl_handlers import commands
from tests.sim.simclient import SimClient, running_sim

TIME_SCALE = 200.0  # sofia's 60 s late margin + 30 s sweep pass in under a second


class Listener:
    """A tracker fed, in order, with every event a subscribed connection receives."""

    def __init__(self, client: SimClient, *, with_api: bool = True) -> None:
        self.client = client
        self.changes: list[tuple[str, bool]] = []
        self.asked: list[str] = []
        self.tracker = RegistrationTracker(lambda k, r: self.changes.append((k, r)),
                                           api=self._api if with_api else None)
        self._fed = 0

    def _api(self, cmd: str) -> str:
        self.asked.append(cmd)
        return self.client.api(cmd)

    def pump(self) -> None:
        while self._fed < len(self.client.events):
            self.tracker.handle(self.client.events[self._fed])
            self._fed += 1

    def wait_change(self, change: tuple[str, bool], timeout: float = 5.0) -> None:
        def seen() -> bool:
            self.pump()
            return change in self.changes
        assert self.client.wait(seen, timeout), f"{change} not seen; got {self.changes}"


@pytest.fixture(scope="module")
def sim_addr() -> Iterator[tuple[str, int]]:
    with running_sim(time_scale=TIME_SCALE) as addr:
        yield addr


@pytest.fixture
def listener(sim_addr: tuple[str, int]) -> Iterator[Listener]:
    subscribe = commands.event_plain([SUBSCRIPTION])[len("event "):]
    with SimClient(*sim_addr, subscribe=subscribe) as c:
        yield Listener(c)


@pytest.fixture
def phones(sim_addr: tuple[str, int]) -> Iterator[SimClient]:
    """The agents' phones: a separate connection that only drives sim_register."""
    with SimClient(*sim_addr, subscribe="") as c:
        yield c


def test_register_unregister_expire_flip_the_agent(listener: Listener,
                                                   phones: SimClient) -> None:
    key = contact_key("{originate_timeout=20}user/3001@default")
    assert key == "3001@default"
    phones.api("sim_register 3001@default 600")
    listener.wait_change((key, True))
    phones.api("sim_unregister 3001@default")
    listener.wait_change((key, False))
    assert listener.tracker.registered(key) is False
    phones.api("sim_register 3001@default 1")   # and never refreshed
    listener.wait_change((key, True))
    del listener.changes[:]
    listener.wait_change((key, False))          # sofia::expire
    assert listener.asked == []                 # the events alone were enough


def test_refreshes_do_not_repeat_the_change(listener: Listener, phones: SimClient) -> None:
    for _ in range(3):
        phones.api("sim_register 3002@default 600")
    listener.client.wait(lambda: sum(e.subclass == "sofia::register"
                                     for e in listener.client.events) >= 3, 5)
    listener.pump()
    assert listener.changes == [("3002@default", True)]


def test_doubt_is_resolved_by_asking_the_switch(listener: Listener,
                                                phones: SimClient) -> None:
    """A tracker started after the phone registered knows nothing until it asks."""
    phones.api("sim_register 3003@default 600")
    phones.api("sim_register 3004@default 600")
    phones.api("sim_unregister 3004@default")
    fresh = RegistrationTracker(lambda k, r: None, api=listener.client.api)
    assert fresh.registered("3003@default") is None
    assert fresh.resolve("3003@default") is True
    assert fresh.resolve("3004@default") is False
    assert fresh.resolve("3999@default") is False   # never registered at all
    assert fresh.known() == {"3003@default": True, "3004@default": False,
                             "3999@default": False}


def test_user_part_is_case_insensitive_like_sofia(listener: Listener,
                                                  phones: SimClient) -> None:
    phones.api("sim_register Alice@default 600")
    listener.wait_change(("alice@default", True))
    assert listener.tracker.registered("ALICE@default") is True
    assert listener.tracker.resolve("ALICE@default") is True
    assert listener.asked == ["sofia_contact alice@default"]


def test_a_left_over_contact_is_checked_with_the_switch(listener: Listener,
                                                        phones: SimClient) -> None:
    """The phone moved (new contact, the old row silently replaced), then unregistered: the
    tracker still holds the old contact, so it asks instead of guessing."""
    phones.api("sim_register 3005@default 600 sip:3005@10.0.0.1:5060")
    phones.api("sim_register 3005@default 600 sip:3005@10.0.0.2:5060")
    listener.wait_change(("3005@default", True))
    phones.api("sim_unregister 3005@default")
    listener.wait_change(("3005@default", False))
    assert listener.asked == ["sofia_contact 3005@default"]


def test_an_answer_that_is_not_sofias_changes_nothing() -> None:
    changes: list[tuple[str, bool]] = []
    tracker = RegistrationTracker(lambda k, r: changes.append((k, r)),
                                  api=lambda cmd: "-ERR sofia_contact Command not found!\n")
    assert tracker.resolve("3006@default") is None
    assert tracker.registered("3006@default") is None and changes == []
    with pytest.raises(RuntimeError, match="api="):
        RegistrationTracker(lambda k, r: None).resolve("3006@default")
