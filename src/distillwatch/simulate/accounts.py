"""Simulated accounts: identity, sign-up, payment and the Account record written for them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from distillwatch.simulate.clock import iso

CONSUMER_EMAIL_DOMAINS = (
    "gmail.com", "outlook.com", "yahoo.com", "proton.me", "icloud.com", "qq.com", "163.com",
    "naver.com", "mail.ru", "gmx.de", "hotmail.com", "yandex.ru",
)
EDU_EMAIL_DOMAINS = tuple(
    f"{name}.edu" for name in (
        "stanford", "mit", "cmu", "berkeley", "umich", "gatech", "utexas", "uw", "cornell",
        "nyu", "ucla", "purdue", "illinois", "wisc", "umd",
    )
) + ("ox.ac.uk", "cam.ac.uk", "ethz.ch", "tum.de", "nus.edu.sg", "tsinghua.edu.cn",
     "u-tokyo.ac.jp", "iitb.ac.in", "usp.br", "unam.mx")


def opaque_id(prefix: str, *parts: object, length: int = 12) -> str:
    """A stable identifier that reveals nothing of what it was made from."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return f"{prefix}-{digest[:length]}"


@dataclass
class Account:
    """One simulated account and its ground truth.

    The provider-side fields become the Account record (``record()``); ``population``,
    ``label``, ``campaign_id`` and ``tactics`` go only to ``labels.json``.
    """

    account_id: str
    population: str
    label: str
    created_at: float
    signup_channel: str
    billing_country: str
    payment_fingerprint: str
    email_domain: str
    verified: bool
    tier: str
    country: str
    organization_id: str | None = None
    campaign_id: str | None = None
    tactics: tuple[str, ...] = ()
    api_keys: tuple[str, ...] = field(default_factory=tuple)

    def record(self) -> dict:
        """The Account record of ``shared/schema/account.schema.json``."""
        return {
            "account_id": self.account_id,
            "organization_id": self.organization_id,
            "created_at": iso(self.created_at),
            "signup_channel": self.signup_channel,
            "billing_country": self.billing_country,
            "payment_fingerprint": self.payment_fingerprint,
            "email_domain": self.email_domain,
            "verified": self.verified,
            "tier": self.tier,
        }


class IdFactory:
    """Makes the opaque account, key, organisation and payment ids of one world."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._counter = 0

    def _next(self, prefix: str, kind: str, length: int = 12) -> str:
        self._counter += 1
        return opaque_id(prefix, self.seed, kind, self._counter, length=length)

    def account(self) -> str:
        return self._next("acct", "account")

    def key(self) -> str:
        return self._next("key", "key", 10)

    def organization(self) -> str:
        return self._next("org", "organization", 10)

    def payment(self) -> str:
        return self._next("pf", "payment", 16)
