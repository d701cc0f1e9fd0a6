"""Scan settings: authored without reference to an engine, validated once, then used.

``Settings`` holds the knobs of the link and score stages. Build it from a dict, a YAML file
or a path (``Settings.from_path_or_dict``); unknown keys and values of the wrong type are
errors that name the key and the file, never silently replaced by defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from distillwatch.exceptions import DistillwatchConfigError


@dataclass(frozen=True)
class LinkSettings:
    """How accounts are linked into clusters.

    Attributes:
        scaffold_min_uses: A scaffold key counts for an account once it carries this many of
            the account's exchanges ...
        scaffold_min_share: ... and at least this share of them (templated use, not a phrase
            that happens to recur).
        scaffold_min_prompt_chars: Prompts shorter than this carry no scaffold: the frame
            keys of a "Continue" or "Thanks!" (sent by everyone, all its keys at once) are
            not counted as a shared template.
        max_block: A token shared by at most this many accounts compares every pair of its
            sharers ...
        pair_window: ... a token shared by more compares each sharer only with its neighbours
            within windows of this many accounts, in three orders (account id, and the
            accounts' smallest scaffold / network token, so that accounts with the same
            tokens sit side by side): a token shared by 100k accounts costs linear, not
            quadratic, work. Two accounts that are compared get their evidence counted over
            every token they share.
        network_sketch: Of an account's shared tokens of one network kind (IPs, /24s,
            hosting ASN + agent), pairs are formed and evidence counted over this many only:
            the first in one random order that every account shares (a bottom-k sketch, so
            two accounts behind one proxy pool keep the same IPs). Exact for accounts with
            this many or fewer; for a proxy-hopping account with hundreds it keeps the pairing
            work linear in accounts, and it can only lower evidence, never raise it.
        signup_bucket_hours: Width of the sign-up / first-activity buckets.
        burst_min_accounts: A bucket is a burst with at least this many accounts ...
        burst_ratio: ... and at least this multiple of the median bucket.
        sync_bucket_minutes: Width of the time buckets of the lockstep comparison.
        sync_min_buckets: Lockstep is judged only between accounts active in this many buckets.
        family_min_strength: A family of evidence counts towards an edge from this strength.
        edge_min_families: Independent families of evidence an edge needs.
        edge_min_strength: Combined strength an edge needs.
        edge_min_support: Share of the smaller endpoint's other neighbours the two accounts
            must have in common (bridges between unrelated dense blocks are dropped).
    """

    scaffold_min_uses: int = 2
    scaffold_min_share: float = 0.1
    scaffold_min_prompt_chars: int = 40
    max_block: int = 256
    pair_window: int = 64
    network_sketch: int = 128
    signup_bucket_hours: float = 6.0
    burst_min_accounts: int = 8
    burst_ratio: float = 4.0
    sync_bucket_minutes: int = 10
    sync_min_buckets: int = 12
    family_min_strength: float = 0.3
    edge_min_families: int = 2
    edge_min_strength: float = 0.7
    edge_min_support: float = 0.2


@dataclass(frozen=True)
class ScoreSettings:
    """How evidence becomes scores and campaigns.

    Attributes:
        min_campaign_accounts: Smallest cluster reported as a campaign.
        min_campaign_confidence: Clusters below this confidence are not reported.
        prior_exchanges: Rates of accounts with few exchanges are shrunk towards zero as if
            this many more, unremarkable, exchanges had been seen.
        expand_min_tokens: An account outside a campaign's core joins it when it carries at
            least this many of the campaign's specific scaffold tokens ...
        expand_min_concealment: ... and its own concealment evidence reaches this (and it
            shows the campaign's signature behaviour, and is not verified).
    """

    min_campaign_accounts: int = 3
    min_campaign_confidence: float = 0.5
    prior_exchanges: float = 8.0
    expand_min_tokens: int = 3
    expand_min_concealment: float = 0.5


@dataclass(frozen=True)
class Settings:
    """Everything a scan can be tuned with (engine-free).

    Example:
        >>> Settings.from_path_or_dict({"link": {"edge_min_families": 2}}).link.max_block
        256
    """

    link: LinkSettings = field(default_factory=LinkSettings)
    score: ScoreSettings = field(default_factory=ScoreSettings)
    disabled_signals: tuple[str, ...] = ()
    disabled_link_families: tuple[str, ...] = ()

    @classmethod
    def from_path_or_dict(cls, source: str | Path | dict[str, Any] | None) -> Settings:
        """Settings from a YAML path, a dict, or defaults for ``None``.

        Raises:
            DistillwatchConfigError: If the path is not a file, the YAML does not parse, or a
                key is unknown or of the wrong type.
        """
        if source is None:
            return cls()
        where = None
        if isinstance(source, str | Path):
            path = Path(source)
            if not path.is_file():
                raise DistillwatchConfigError(f"Path {path} does not point to a valid file.")
            where = str(path)
            try:
                source = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as error:
                raise DistillwatchConfigError(f"Settings file does not parse: {error}",
                                              where) from error
        if not isinstance(source, dict):
            raise DistillwatchConfigError("Settings must be a mapping", where)
        known = ("link", "score", "disabled_signals", "disabled_link_families")
        unknown = set(source) - set(known)
        if unknown:
            raise DistillwatchConfigError(
                f"Unknown settings key(s) {', '.join(sorted(unknown))}; known: "
                f"{', '.join(known)}", where)
        families = tuple(source.get("disabled_link_families") or ())
        from distillwatch.link.pairs_sql import FAMILY_NAMES

        wrong = sorted(set(families) - set(FAMILY_NAMES))
        if wrong:
            raise DistillwatchConfigError(
                f"Unknown link famil(ies) {', '.join(wrong)}; known: {', '.join(FAMILY_NAMES)}",
                where)
        return cls(link=_section(LinkSettings, source.get("link") or {}, "link", where),
                   score=_section(ScoreSettings, source.get("score") or {}, "score", where),
                   disabled_signals=tuple(source.get("disabled_signals") or ()),
                   disabled_link_families=families)


def _section(kind: type, values: dict[str, Any], name: str, where: str | None) -> Any:
    if not isinstance(values, dict):
        raise DistillwatchConfigError(f"Settings section '{name}' must be a mapping", where)
    known = {f.name: f for f in fields(kind)}
    unknown = set(values) - set(known)
    if unknown:
        raise DistillwatchConfigError(
            f"Unknown key(s) {', '.join(sorted(unknown))} in settings section '{name}'; "
            f"known: {', '.join(sorted(known))}", where)
    checked = {}
    for key, value in values.items():
        default = getattr(kind(), key)
        if isinstance(default, bool) or not isinstance(value, int | float) or (
                isinstance(default, int) and not isinstance(value, int)):
            raise DistillwatchConfigError(
                f"Settings '{name}.{key}' must be a {type(default).__name__}, got {value!r}",
                where)
        checked[key] = type(default)(value)
    return kind(**checked)
