"""How an account asks: parameters that maximise what each request harvests."""

from __future__ import annotations

import numpy as np

from distillwatch.signals.base import Profile, RateSignal, Signal, column


class HarvestParams(RateSignal):
    """Share of exchanges with logprobs, several samples (n > 1) or a very long max_tokens."""

    NAME = "harvest_params"
    FAMILY = "intent"
    DESCRIPTION = "logprobs, n > 1 or saturating max_tokens"
    RATE_COLUMNS = ("logprobs_rate", "multi_sample_rate", "long_max_tokens_rate")
    EXPLAIN = ("{value:.0%} of exchanges request logprobs, n > 1 or a very long max_tokens")


class TemplatedSweep(Signal):
    """Single-turn prompts on a shared scaffold, each task new: a sweep of a task space.

    The value multiplies the single-turn share, the share of distinct prompts (an evaluation
    run repeats its prompts; a harvest never does) and the share of exchanges on the account's
    main scaffold, and discounts accounts with too few exchanges to call it a sweep.
    """

    NAME = "templated_sweep"
    FAMILY = "intent"
    DESCRIPTION = "many distinct single-turn tasks on a few scaffolds, none repeated"
    DEFAULT_THRESHOLDS = {"low": 0.25, "high": 0.6, "min_exchanges": 10.0,
                          "full_exchanges": 40.0}

    def measure(self, profile: Profile, prior: float) -> np.ndarray:
        exchanges = column(profile, "exchanges")
        low, full = self.thresholds["min_exchanges"], self.thresholds["full_exchanges"]
        volume = np.clip((exchanges - low) / (full - low), 0.0, 1.0)
        distinct = np.clip((column(profile, "distinct_prompt_share") - 0.85) / 0.13, 0.0, 1.0)
        return (column(profile, "single_turn_share") * distinct
                * column(profile, "template_share") * volume)

    def fit(self, profile: Profile) -> np.ndarray:
        distinct = np.clip((column(profile, "distinct_prompt_share") - 0.85) / 0.13, 0.0, 1.0)
        return self.campaign_strength(column(profile, "template_share") * distinct)

    def explain(self, value: float) -> str:
        return (f"sweep index {value:.2f}: single-turn tasks on a shared scaffold, "
                "no prompt repeated")
