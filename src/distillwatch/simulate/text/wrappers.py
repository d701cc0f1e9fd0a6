"""Chain-of-thought prompt wrappers harvested from lm-eval task configurations.

A wrapper is a ``doc_to_text`` prompt whose own words ask for step-by-step reasoning (in
English or in one of the translations lm-eval ships, e.g. MGSM's "Réponse étape par étape")
and that has exactly one slot for the task once normalised to ``{task}``. Attackers and
evaluation vendors wrap tasks in exactly such text.
"""

from __future__ import annotations

import re

from distillwatch.simulate.text.jinja import PLACEHOLDER, template_candidates
from distillwatch.simulate.text.language import code_from_filename, identify
from distillwatch.simulate.text.records import PromptWrapper
from distillwatch.simulate.text.taskyaml import TaskConfigs

# Words that ask for reasoning, matched against the wrapper's literal text only.
COT_MARKERS = re.compile(
    r"step[ -]by[ -]step|\bthink\b|\breason(ing)?\b|\blet'?s (think|solve|work|reason)|"
    r"\blet us think|chain[ -]of[ -]thought|show your work|"
    r"étape par étape|schritt[ -]für[ -]schritt|paso a paso|passo a passo|pas a pas|"
    r"pas à pas|urratsez urrats|adım adım|hatua kwa hatua|langkah demi langkah|từng bước|"
    r"пошагов|шаг за шагом|крок за кроком|ステップ|段階的|一步一步|逐步|차근 ?차근|단계별|"
    r"ধাপে ধাপে|దశలవారీగా|ทีละขั้นตอน|चरण दर चरण|خطوة بخطوة",
    re.IGNORECASE,
)


def is_cot_wrapper(template: str) -> bool:
    """Whether a normalised template is a chain-of-thought wrapper.

    Wrappers for image questions (an ``<image>`` token) are left out: the simulated traffic
    is text only.

    Args:
        template: A template with ``{task}`` placeholders.

    Returns:
        True if it has exactly one ``{task}`` and its own text asks for reasoning.
    """
    return (template.count(PLACEHOLDER) == 1 and "<image>" not in template
            and COT_MARKERS.search(template.replace(PLACEHOLDER, " ")) is not None)


def wrapper_language(template: str, sources: list[str]) -> str:
    """The language of a wrapper.

    Args:
        template: The normalised wrapper.
        sources: The files it is written in.

    Returns:
        The language code the file names carry when they all agree on one
        (``mgsm_native_cot_fr`` -> ``"fr"``); otherwise (no code, or the same text filed
        under several languages, as AfriMGSM's shared English prompts are) py3langid's
        reading of the wrapper's own text.
    """
    codes = {code_from_filename(source) for source in sources}
    code = next(iter(codes)) if len(codes) == 1 else None
    return code or identify(template.replace(PLACEHOLDER, " "))


def extract_wrappers(configs: TaskConfigs) -> tuple[PromptWrapper, ...]:
    """Deduplicated chain-of-thought wrappers from lm-eval task configurations.

    A template written in several files is kept once, with the first of them as its source
    and the language given by :func:`wrapper_language`.

    Args:
        configs: Parsed lm-eval task configurations.

    Returns:
        The wrappers, sorted by source path then template.
    """
    sources: dict[str, list[str]] = {}
    for path, config in configs.configs:
        text = config.get("doc_to_text")
        if not isinstance(text, str):
            continue
        template = next((c for c in template_candidates(text) if is_cot_wrapper(c)), None)
        if template is not None:
            sources.setdefault(template, []).append(path)
    wrappers = [PromptWrapper(min(paths), template, wrapper_language(template, paths), "cot")
                for template, paths in sources.items()]
    return tuple(sorted(wrappers, key=lambda w: (w.source, w.template)))
