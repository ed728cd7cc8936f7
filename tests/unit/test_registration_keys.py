"""Which agent contacts are registration-gated, and under which user@domain."""

from __future__ import annotations

import pytest

from acd.registration import contact_key


@pytest.mark.parametrize(("contact", "key"), [
    ("user/1001@default", "1001@default"),
    ("{originate_timeout=20,sip_h_X-Q=a\\,b}user/1001@default", "1001@default"),
    ("<ignore_early_media=true>{a=1}[leg=2]user/1001@example.com", "1001@example.com"),
    ("{a={nested}}user/1001@default", "1001@default"),
    ("user/Alice@default", "alice@default"),          # sofia: upper(sip_user)
    ("sofia/internal/1001%default", "1001@default"),  # looks up the registration
    # not gated: the INVITE goes where it says, or to a carrier
    ("sofia/internal/1001@127.0.0.1:5090", None),
    ("sofia/internal/1001%default@10.0.0.1", None),   # with an "@" sofia takes it as a URI
    ("sofia/gateway/carrier/13800138000", None),
    ("sofia/internal/1001", None),
    ("loopback/4005550100/default", None),
    ("error/user_busy", None),
    # several legs, or a block that does not close: not one phone
    ("user/1001@default,user/1002@default", None),
    ("user/1001@default|user/1002@default", None),
    ("{a=1user/1001@default", None),
    ("user/1001", None),
    ("", None),
])
def test_contact_key(contact: str, key: str | None) -> None:
    assert contact_key(contact) == key


def test_a_domainless_user_contact_takes_the_switch_domain_when_given() -> None:
    assert contact_key("user/1001", default_domain="default") == "1001@default"
