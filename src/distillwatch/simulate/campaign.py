"""An attack campaign: a composition of tactics, executed as accounts sending traffic."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from distillwatch.exceptions import DistillwatchConfigError
from distillwatch.plugins import check_options
from distillwatch.simulate.accounts import CONSUMER_EMAIL_DOMAINS, EDU_EMAIL_DOMAINS, Account
from distillwatch.simulate.clock import DAY, HOUR, DailyCurve, poisson
from distillwatch.simulate.context import WorldContext
from distillwatch.simulate.events import EventSink
from distillwatch.simulate.exchange import build_exchange
from distillwatch.simulate.network import country_offset
from distillwatch.simulate.payloads import CAPABILITIES, Payload, PayloadSpace, PayloadStream
from distillwatch.simulate.plan import CampaignPlan
from distillwatch.simulate.populations.base import Population, weighted
from distillwatch.simulate.populations.chat import ChatParams, plan_session
from distillwatch.simulate.scaffolds import SCAFFOLDS, paraphrase
from distillwatch.simulate.tactics.registry import get_tactic

# Task kinds and the frames that fit them: a grading task needs a grading frame, an agentic task
# a tool-trace (or plain) frame; other tasks take chain-of-thought or plain frames.
_FRAMES_FOR = {"grading": ("grading",), "agentic_tool_use": ("tool_trace", "plain")}
_DEFAULT_FRAMES = ("cot", "plain")


@dataclass(frozen=True)
class CampaignSpec:
    """A campaign as a preset describes it.

    Args:
        campaign_id: Stable id, e.g. ``"A-01"``.
        name: Short descriptive name.
        accounts: How many accounts it opens over the window.
        capabilities: Share of harvest traffic per capability (keys from ``CAPABILITIES``).
        tactics: Tactic id -> knobs, applied in order.
        per_account_per_day: Mean requests per active account and day (tactics may change it).
    """

    campaign_id: str
    name: str
    accounts: int
    capabilities: dict[str, float]
    tactics: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_account_per_day: float = 26.0

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str) -> CampaignSpec:
        allowed = {"id", "name", "accounts", "capabilities", "tactics", "per_account_per_day"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise DistillwatchConfigError(
                f"Unknown campaign key(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(allowed))}",
                source)
        missing = sorted({"id", "accounts", "capabilities"} - set(data))
        if missing:
            raise DistillwatchConfigError(f"Campaign is missing {', '.join(missing)}", source)
        bad = sorted(set(data["capabilities"]) - set(CAPABILITIES))
        if bad:
            raise DistillwatchConfigError(
                f"Campaign {data['id']}: unknown capability {', '.join(bad)}; "
                f"known: {', '.join(CAPABILITIES)}", source)
        for name, knobs in (data.get("tactics") or {}).items():
            check_options("tactic", name, knobs or {}, get_tactic(name).DEFAULT_KNOBS,
                          source=f"{source}: campaign {data['id']}")
        return cls(str(data["id"]), str(data.get("name", data["id"])), int(data["accounts"]),
                   {k: float(v) for k, v in data["capabilities"].items()},
                   {k: dict(v or {}) for k, v in (data.get("tactics") or {}).items()},
                   float(data.get("per_account_per_day", 26.0)))


@dataclass
class _Head:
    """One account of the campaign and how it behaves."""

    account: Account
    active_from: float
    active_until: float
    curve: DailyCurve
    frames: dict[str, int]  # frame kind -> index of its frame (per-account rotation)
    sent: int = 0
    camouflage: int = 0


class Campaign(Population):
    """Executes a :class:`CampaignSpec`."""

    NAME = "campaign"
    LABEL = "attack"

    def __init__(self, world: WorldContext, spec: CampaignSpec) -> None:
        super().__init__(world)
        self.spec = spec
        self.rng = world.rng("campaign", spec.campaign_id)
        plan = CampaignPlan(accounts=spec.accounts, capabilities=dict(spec.capabilities),
                            per_account_per_day=spec.per_account_per_day)
        self.tactics = []
        for name, knobs in spec.tactics.items():
            tactic = get_tactic(name)(self.rng, **knobs)
            tactic.apply(plan)
            self.tactics.append(tactic)
        self.plan = plan
        self.heads: list[_Head] = []

    @property
    def knobs_record(self) -> dict[str, Any]:
        """Every tactic's effective knobs, for ``labels.json``."""
        return {"accounts": self.spec.accounts,
                "per_account_per_day": self.spec.per_account_per_day,
                **{t.NAME: _jsonable(t.knobs) for t in self.tactics}}

    def setup(self) -> list[Account]:
        world, rng, plan = self.world, self.rng, self.plan
        plan.network.prepare(rng, world.networks)
        self._frames = self._choose_frames()
        self._streams = self._payload_streams()
        payments = [world.ids.payment() for _ in range(plan.payment_pool)]
        bursts = plan.bursts or [(-rng.uniform(3, 40), plan.accounts)]
        tactic_ids = tuple(t.NAME for t in self.tactics)
        for day, count in bursts:
            burst_at = world.window.start + day * DAY + rng.uniform(0, 6) * HOUR
            for _ in range(count):
                created = burst_at + rng.uniform(0, 3) * HOUR
                channel = weighted(rng, plan.signup_channels)
                country = rng.choice(plan.billing_countries)
                shared = payments and rng.random() < plan.payment_share_prob
                account = self.new_account(
                    country=country, signup_channel=channel, created_at=created,
                    payment=rng.choice(payments) if shared else None,
                    email_domain=rng.choice(EDU_EMAIL_DOMAINS if channel == "education"
                                            else CONSUMER_EMAIL_DOMAINS),
                    verified=rng.random() < plan.verified_share, tier=plan.tier,
                    label="attack", population="campaign",
                )
                account.campaign_id = self.spec.campaign_id
                account.tactics = tactic_ids
                start = created + rng.uniform(0.3, 6) * HOUR
                until = (start + plan.lifetime_days * DAY * rng.uniform(0.7, 1.3)
                         if plan.lifetime_days else world.window.end)
                offset = (plan.curve_offset_hours if plan.curve_offset_hours is not None
                          else country_offset(country) + rng.uniform(-2, 2))
                frames = {kind: rng.randrange(len(options))
                          for kind, options in self._frames.items()}
                self.heads.append(_Head(account, start, until, DailyCurve(plan.curve, offset),
                                        frames))
        return self.accounts

    def _choose_frames(self) -> dict[str, list[str]]:
        corpus, rng, plan = self.world.corpus, self.rng, self.plan
        chosen: dict[str, list[str]] = {}
        for kind, options in SCAFFOLDS.items():
            candidates = list(options)
            if kind == "cot":
                wanted = "en" if plan.language == "en" else None
                candidates += [w.template for w in corpus.wrappers
                               if (w.language == "en") == (wanted == "en")]
            rng.shuffle(candidates)
            chosen[kind] = candidates[: max(1, plan.templates_per_kind)]
        return chosen

    def _payload_streams(self) -> dict[str, PayloadStream]:
        world, plan = self.world, self.plan
        expected = int(plan.accounts * plan.per_account_per_day * world.window.days * 2) + 100
        streams = {}
        for capability in plan.capabilities:
            key = (capability, plan.language)
            if key not in world.payload_spaces:
                world.payload_spaces[key] = PayloadSpace(world, capability, plan.language)
            space = world.payload_spaces[key]
            offset = world.payload_claimed.get(key, 0)
            length = min(expected, max(1, space.size - offset)) if plan.coverage_partition \
                else space.size
            if plan.coverage_partition:
                world.payload_claimed[key] = offset + length
            streams[capability] = PayloadStream(space, self.rng, plan.coverage_partition,
                                                offset, length)
        return streams

    def plan_day(self, day: int, sink: EventSink) -> None:
        world, rng, plan = self.world, self.rng, self.plan
        day_start = world.window.day_start(day)
        heads = [h for h in self.heads
                 if h.active_from < day_start + DAY and h.active_until > day_start]
        if not heads:
            return
        boost = plan.pivot_boost if plan.model_pivot and day == world.models.release_day else 1.0
        if plan.synchronized_minutes:
            self._plan_waves(day_start, heads, boost, sink)
            return
        for head in heads:
            count = poisson(rng, plan.per_account_per_day * boost)
            times = sorted(head.curve.sample(rng, day_start) for _ in range(count))
            self._send(head, times, day, sink)

    def _plan_waves(self, day_start: float, heads: list[_Head], boost: float,
                    sink: EventSink) -> None:
        plan, rng = self.plan, self.rng
        waves = int(24 * 60 / plan.synchronized_minutes)
        per_wave = plan.per_account_per_day * boost / waves
        for head in heads:
            times = []
            for wave in range(waves):
                at = day_start + wave * plan.synchronized_minutes * 60
                times += [at + rng.uniform(0, 90) for _ in range(poisson(rng, per_wave))]
            self._send(head, sorted(times), int((day_start - self.world.window.start) // DAY),
                       sink)

    def _send(self, head: _Head, times: list[float], day: int, sink: EventSink) -> None:
        world, rng, plan = self.world, self.rng, self.plan
        busy_until = 0.0
        for ts in times:
            if ts < head.active_from or ts >= head.active_until or ts < busy_until:
                continue
            # Camouflage is a share of the account's exchanges: a conversation counts as many
            # exchanges as it has turns, so it is started only while the quota is short.
            if plan.camouflage_share and head.camouflage < plan.camouflage_share * head.sent:
                session = world.pools.take_any("camouflage", ("general", "code", "foreign"), rng)
                if session is not None:
                    before = len(sink.events)
                    busy_until = plan_session(
                        world, sink, rng, head.account, session, ts,
                        client_for=lambda head=head: plan.network.client_for(
                            rng, head.account.account_id, rng.choice(plan.user_agents)),
                        model=world.models.for_legit(rng, day),
                        params=ChatParams(temperature=0.7), tag="camouflage",
                    )
                    head.camouflage += len(sink.events) - before
                    head.sent += len(sink.events) - before
                    continue
            self._harvest(head, ts, day, sink)
            head.sent += 1

    def _harvest(self, head: _Head, ts: float, day: int, sink: EventSink) -> None:
        world, rng, plan = self.world, self.rng, self.plan
        capability = weighted(rng, plan.capabilities)
        payload = self._streams[capability].next()
        frame_kind = self._frame_kind(capability)
        options = self._frames[frame_kind]
        index = (head.frames[frame_kind] if plan.template_rotation == "per_account"
                 else rng.randrange(len(options)))
        frame = paraphrase(options[index % len(options)], rng, plan.paraphrase)
        prompt = _fill(frame, payload)
        account = head.account
        model = (world.models.new if plan.model_pivot and day >= world.models.release_day
                 else world.models.main)
        client = plan.network.client_for(rng, account.account_id, rng.choice(plan.user_agents))
        system = rng.choice(plan.system_prompts)
        reply = world.reply(rng, rng.randint(*plan.reply_chars))
        n = rng.choice(plan.n)
        max_tokens = rng.choice(plan.max_tokens)
        temperature = rng.choice(plan.temperature)
        key = account.api_keys[0]
        tools = list(payload.tools) if payload.tools else None

        def render() -> dict:
            return build_exchange(
                ts=ts, account_id=account.account_id, api_key_id=key, model=model,
                client=client, messages=[{"role": "user", "content": prompt}], system=system,
                tools=tools, max_tokens=max_tokens, temperature=temperature, n=n,
                logprobs=plan.logprobs or None, top_logprobs=plan.top_logprobs,
                reasoning_budget=plan.reasoning_budget if frame_kind == "cot" else None,
                reply=reply, include_reply=world.include_replies,
            )

        sink.add(ts, account, render, tag=capability)

    def _frame_kind(self, capability: str) -> str:
        fitting = _FRAMES_FOR.get(capability, _DEFAULT_FRAMES)
        weights = {k: self.plan.elicitation.get(k, 0.0) for k in fitting}
        if sum(weights.values()) <= 0:
            return fitting[-1]
        return weighted(self.rng, weights)


def _fill(frame: str, payload: Payload) -> str:
    text = frame.replace("{task}", payload.task)
    if "{response}" in text:
        text = text.replace("{response}", payload.response or "")
    return text


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value
