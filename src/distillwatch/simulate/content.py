"""Real text for the simulated world, handed out so that no session is ever used twice.

ShareGPT sessions are split once, by seed, into shares (ordinary and heavy legitimate users,
attack payloads, camouflage) and kinds (code, non-English, general). A population takes
sessions from its share and they are gone: the same conversation never appears in two accounts,
which would fake a "same prompt, many accounts" signal.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from distillwatch.exceptions import DistillwatchConfigError
from distillwatch.simulate.text import Corpus, Session

KINDS = ("code", "foreign", "general")
SHARES: dict[str, float] = {"legit": 0.74, "attack": 0.14, "camouflage": 0.12}

_CODE_HINTS = re.compile(
    r"```|\bdef |\bfunction\b|\bclass \w|\bimport \w|#include|\bSELECT\b|\bpublic static\b|"
    r"\b(python|javascript|typescript|java|golang|rust|c\+\+|sql|react|node\.js|django|"
    r"flask|regex|api|bug|error|exception|compile|code|script)\b",
    re.IGNORECASE,
)


# Languages with enough speakers among API users to count as a non-English session; a short
# English prompt is sometimes identified as Afrikaans, Breton or Pidgin, and stays English.
MAJOR_LANGUAGES = frozenset({
    "zh", "ko", "ja", "es", "pt", "fr", "de", "it", "ru", "uk", "vi", "id", "tr", "pl", "nl",
    "ar", "hi", "th", "fa", "he", "sv", "cs", "el", "ro", "hu",
})


def session_kind(session: Session) -> str:
    """``code``, ``foreign`` (a major language other than English) or ``general``."""
    if session.language in MAJOR_LANGUAGES:
        return "foreign"
    first_user = next((t.text for t in session.turns if t.role == "user"), "")
    if _CODE_HINTS.search(first_user[:2000]):
        return "code"
    return "general"


class SessionPools:
    """Hands out each ShareGPT session at most once.

    Args:
        corpus: The loaded corpus (development split only).
        seed: Decides which session goes to which share.
    """

    def __init__(self, corpus: Corpus, seed: int) -> None:
        rng = random.Random(f"{seed}:session-pools")
        sessions = list(corpus.sharegpt)
        rng.shuffle(sessions)
        self._pools: dict[tuple[str, str], list[Session]] = {
            (share, kind): [] for share in SHARES for kind in KINDS
        }
        bounds, acc = [], 0.0
        for share, fraction in SHARES.items():
            acc += fraction
            bounds.append((acc, share))
        for session in sessions:
            draw = rng.random()
            share = next(name for bound, name in bounds if draw < bound or bound == acc)
            self._pools[(share, session_kind(session))].append(session)
        self.taken = 0

    def remaining(self, share: str, kind: str) -> int:
        return len(self._pools[(share, kind)])

    def take(self, share: str, kind: str) -> Session | None:
        """The next unused session of ``share`` and ``kind``, or None when they have run out."""
        if (share, kind) not in self._pools:
            raise DistillwatchConfigError(f"No session pool '{share}/{kind}'")
        pool = self._pools[(share, kind)]
        if not pool:
            return None
        self.taken += 1
        return pool.pop()

    def take_language(self, share: str, language: str) -> Session | None:
        """The next unused non-English session in ``language``, or None."""
        pool = self._pools[(share, "foreign")]
        for index in range(len(pool) - 1, -1, -1):
            if pool[index].language == language:
                self.taken += 1
                return pool.pop(index)
        return None

    def languages(self, share: str) -> dict[str, int]:
        """How many unused non-English sessions are left per language."""
        counts: dict[str, int] = {}
        for session in self._pools[(share, "foreign")]:
            counts[session.language] = counts.get(session.language, 0) + 1
        return counts

    def take_any(self, share: str, kinds: Sequence[str], rng: random.Random) -> Session | None:
        """A session of one of ``kinds`` (drawn in proportion to what is left)."""
        left = [(kind, self.remaining(share, kind)) for kind in kinds]
        total = sum(n for _, n in left)
        if total == 0:
            return None
        pick = rng.randrange(total)
        for kind, n in left:
            if pick < n:
                return self.take(share, kind)
            pick -= n
        return None

    def drain(self, share: str, kind: str) -> list[Session]:
        """Every remaining session of a share and kind, consumed (in a seeded order)."""
        pool = self._pools[(share, kind)]
        sessions = list(reversed(pool))
        self.taken += len(pool)
        pool.clear()
        return sessions


class ReplyBank:
    """Real model replies used as length-matched output text where no real reply exists.

    Args:
        replies: Assistant texts from sessions no account sends.
    """

    def __init__(self, replies: Sequence[str]) -> None:
        self.replies = [r for r in replies if len(r) > 40] or ["OK."]

    def reply(self, rng: random.Random, approx_chars: int) -> str:
        parts, size = [], 0
        while size < approx_chars:
            text = rng.choice(self.replies)
            parts.append(text)
            size += len(text) + 2
        joined = "\n\n".join(parts)
        if len(joined) <= approx_chars:
            return joined
        cut = joined.rfind(" ", 0, approx_chars)
        return joined[: cut if cut > approx_chars // 2 else approx_chars]


def attack_side(item_id: str) -> bool:
    """Splits benchmark items that both a legitimate product and attackers could use."""
    import hashlib

    return int(hashlib.sha1(f"side:{item_id}".encode()).hexdigest(), 16) % 2 == 1
