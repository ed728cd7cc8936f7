"""What a FreeSWITCH node run by this core needs to know beyond the ESL settings: the section
``freeswitch:`` of the product's config file.

Frozen models that refuse unknown keys, like the rest of the config; checks that need the
whole config (which node, the heartbeat the workers expect) are made by ``render``.
"""

from __future__ import annotations

import ipaddress
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME = r"^[A-Za-z0-9_-]{1,64}$"
# A value ends up inside an XML attribute and, for the pre-processor's `set`, after `name=`:
# `$`, braces and quotes would be expanded or cut by FreeSWITCH, whitespace breaks ESL `auth`.
SECRET_FORBIDDEN = re.compile(r"[\s$\"'{}<>&]")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _cidrs(values: list[str]) -> list[str]:
    out = []
    for value in values:
        try:
            out.append(str(ipaddress.ip_network(value, strict=False)))
        except ValueError:
            raise ValueError(f"{value!r} is not an address or network; write e.g. 10.0.0.5 "
                             "or 10.0.0.0/24") from None
    return out


def check_secret(value: str, what: str) -> str:
    if len(value) < 8:
        raise ValueError(f"{what} is shorter than 8 characters; use a long random one")
    if SECRET_FORBIDDEN.search(value):
        raise ValueError(f"{what} contains whitespace or one of $ \" ' {{ }} < > &, which "
                         "FreeSWITCH's config would expand or cut; use letters, digits and "
                         "-_.+=/:@!%")
    return value


class Trunk(_Model):
    """A carrier's SIP trunk: where its 400 calls come from, and where transfers go out."""

    name: str = Field(pattern=NAME)
    # Source addresses of the carrier's signalling: the only ones allowed to send calls in.
    addresses: list[str] = Field(min_length=1)
    # host[:port] to send transfers to, as the sofia gateway of this name (a tenant's
    # `gateway: sofia/gateway/<name>`); none: the trunk only brings calls in.
    proxy: str | None = Field(None, pattern=r"^[A-Za-z0-9.-]+(:\d{1,5})?$")

    _nets = field_validator("addresses")(lambda cls, v: _cidrs(v))


class Agent(_Model):
    """An agent's phone: registers on the agents' profile with these credentials."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    password: str = Field(repr=False)
    name: str = ""

    @field_validator("password")
    @classmethod
    def _password(cls, v: str) -> str:
        return check_secret(v, "the agent's password")


class Fallback(_Model):
    """What the switch does by itself with a 400 call no worker took in time."""

    after_s: int = Field(20, ge=3, le=600)
    # Signal 180 Ringing before parking: until a worker or the fallback acts, the caller hears
    # their network's ringback instead of silence. Nothing is answered by it.
    ring_while_parked: bool = True
    # Played after answering (a file path the switch can read, or a tone_stream:// spec).
    announce: str = "tone_stream://%(400,200,425);loops=3"
    # How long callers wait in the switch's own queue for an agent before voicemail
    # (0: straight to voicemail; no agents configured: straight to voicemail).
    queue_wait_s: int = Field(60, ge=0, le=3600)
    voicemail_max_s: int = Field(120, ge=5, le=600)


class NodeAddresses(_Model):
    """A node's own addresses, where they are not the node's ESL `host`."""

    sip_ip: str | None = None      # SIP and RTP bind here
    ext_ip: str | None = None      # the address carriers and phones see (NAT), in SDP/Contact
    esl_ip: str | None = None      # the ESL socket binds here

    @field_validator("sip_ip", "ext_ip", "esl_ip")
    @classmethod
    def _ip(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ipaddress.ip_address(v)
            except ValueError:
                raise ValueError(f"{v!r} is not an IP address; FreeSWITCH binds to an "
                                 "address, not a host name") from None
        return v


class SwitchConfig(_Model):
    # Where the workers connect from: the ESL socket refuses every other address.
    workers: list[str] = Field(default_factory=lambda: ["127.0.0.1/32"], min_length=1)
    carrier_port: int = Field(5060, ge=1, le=65535)
    agent_port: int = Field(5070, ge=1, le=65535)
    # The SIP domain of agents' phones (their user@domain); default: the node's SIP address.
    agent_domain: str | None = Field(None, pattern=r"^[A-Za-z0-9.-]{1,253}$")
    # Where agents' phones may register from (their credentials are refused elsewhere).
    agent_networks: list[str] = Field(default_factory=list)
    trunks: list[Trunk] = Field(default_factory=list)
    agents: list[Agent] = Field(default_factory=list)
    rtp_ports: tuple[int, int] = (16384, 32768)
    # Must exist on the switch (FreeSWITCH's record does not create folders) and be the
    # workers' CC_VOICEMAIL_DIR.
    voicemail_dir: str = Field("/var/lib/freeswitch/recordings/voicemail", pattern=r"^/[^\s$\"'<>&{}]*$")
    # Music on hold: a folder of 8 kHz audio files on the switch; none: a tone in the conf.
    moh_dir: str | None = Field(None, pattern=r"^/[^\s$\"'<>&{}]*$")
    max_sessions: int = Field(1000, ge=1)
    sessions_per_second: int = Field(100, ge=1)
    fallback: Fallback = Field(default_factory=Fallback)
    nodes: dict[str, NodeAddresses] = Field(default_factory=dict)

    _workers = field_validator("workers", "agent_networks")(lambda cls, v: _cidrs(v))

    @model_validator(mode="after")
    def _consistent(self) -> SwitchConfig:
        low, high = self.rtp_ports
        if not 1024 <= low < high <= 65535:
            raise ValueError(f"rtp_ports {list(self.rtp_ports)}: write [low, high] with "
                             "1024 <= low < high <= 65535, e.g. [16384, 32768]")
        if self.carrier_port == self.agent_port:
            raise ValueError(f"carrier_port and agent_port are both {self.agent_port}: the "
                             "two SIP profiles need a port each")
        if self.agents and not self.agent_networks:
            raise ValueError("agents are listed but agent_networks is empty: list the "
                             "networks their phones register from, e.g. [10.1.0.0/16]")
        for kind, names in (("trunk", [t.name for t in self.trunks]),
                            ("agent", [a.id for a in self.agents])):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{kind} names must be unique; repeated: {', '.join(dupes)}")
        return self
