"""A fast guess of a prompt's language from its script (and, for Latin, common words).

Fingerprinting runs on every exchange, so this trades precision for speed: it separates the
scripts that matter for multilingual campaigns (CJK, Hangul, Cyrillic, Arabic, Devanagari,
Thai, Greek, Hebrew) and, within Latin script, English from a few frequent languages.
"""

from __future__ import annotations

import re

_SCRIPTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ja", re.compile(r"[\u3040-\u30ff]")),
    ("ko", re.compile(r"[\uac00-\ud7af]")),
    ("zh", re.compile(r"[\u4e00-\u9fff]")),
    ("ru", re.compile(r"[\u0400-\u04ff]")),
    ("ar", re.compile(r"[\u0600-\u06ff]")),
    ("hi", re.compile(r"[\u0900-\u097f]")),
    ("th", re.compile(r"[\u0e00-\u0e7f]")),
    ("el", re.compile(r"[\u0370-\u03ff]")),
    ("he", re.compile(r"[\u0590-\u05ff]")),
)
_LATIN_WORDS = {
    "en": {"the", "and", "is", "of", "to", "what", "how", "with", "for", "you"},
    "es": {"el", "la", "de", "que", "y", "los", "por", "para", "una", "cómo"},
    "fr": {"le", "la", "les", "des", "est", "et", "une", "pour", "que", "vous"},
    "de": {"der", "die", "das", "und", "ist", "nicht", "ein", "eine", "mit", "wie"},
    "pt": {"o", "os", "de", "que", "não", "uma", "para", "com", "como", "você"},
    "it": {"il", "di", "che", "non", "una", "per", "sono", "come", "della", "gli"},
    "vi": {"của", "và", "là", "không", "có", "những", "một", "các", "cho", "được"},
    "id": {"yang", "dan", "di", "ini", "itu", "dengan", "untuk", "tidak", "dari", "adalah"},
}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
SAMPLE_CHARS = 400


def guess_language(text: str) -> str:
    """An ISO 639-1 code, or ``"und"`` when there is too little text to tell."""
    sample = text[:SAMPLE_CHARS]
    words = [w.lower() for w in _WORD.findall(sample)]
    letters = sum(map(len, words))
    if letters < 3:
        return "und"
    if not sample.isascii():
        for code, pattern in _SCRIPTS:
            if len(pattern.findall(sample)) >= max(2, letters // 10):
                return code
    scores = {code: sum(w in vocabulary for w in words)
              for code, vocabulary in _LATIN_WORDS.items()}
    best = max(scores, key=scores.get)
    return best if scores[best] > 0 else "en"
