"""A fast guess of a prompt's language from its script (and, for Latin, common words).

Fingerprinting runs on every exchange, so this trades precision for speed: it separates the
scripts that matter for multilingual campaigns (CJK, Hangul, Cyrillic, Arabic, Devanagari,
Thai, Greek, Hebrew) and, within Latin script, English from a few frequent languages.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.fingerprint.arrays import flat_values, list_offsets, texts

# Checked in order; a script wins with at least max(2, letters / 10) of its characters.
_SCRIPTS: tuple[tuple[str, str], ...] = (
    ("ja", r"[\x{3040}-\x{30ff}]"),
    ("ko", r"[\x{ac00}-\x{d7af}]"),
    ("zh", r"[\x{4e00}-\x{9fff}]"),
    ("ru", r"[\x{0400}-\x{04ff}]"),
    ("ar", r"[\x{0600}-\x{06ff}]"),
    ("hi", r"[\x{0900}-\x{097f}]"),
    ("th", r"[\x{0e00}-\x{0e7f}]"),
    ("el", r"[\x{0370}-\x{03ff}]"),
    ("he", r"[\x{0590}-\x{05ff}]"),
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
_CODES = list(_LATIN_WORDS)
_VOCABULARY = pa.array(sorted(set().union(*_LATIN_WORDS.values())))
# Per vocabulary word, how many languages list it, and those languages' indices in order.
_MEMBERSHIP = [[lang for lang, code in enumerate(_CODES) if word in _LATIN_WORDS[code]]
               for word in _VOCABULARY.to_pylist()]
_MEMBER_COUNT = np.array([len(langs) for langs in _MEMBERSHIP], dtype=np.int64)
_MEMBER_LANGS = np.array([lang for langs in _MEMBERSHIP for lang in langs], dtype=np.int64)
_MEMBER_START = np.concatenate([[0], np.cumsum(_MEMBER_COUNT)[:-1]])
# Words are whitespace-separated, trimmed of punctuation; letters are the characters of words
# that hold a letter (scripts without spaces make one long word).
_PUNCTUATION = ".,;:!?¿¡()[]{}<>\"'«»“”‘’…-–—/*#_`~|"
SAMPLE_CHARS = 400


def _letters(sample: pa.Array, words: pa.Array, rows: np.ndarray, ascii_only: np.ndarray
             ) -> np.ndarray:
    """Per text, the characters of its words that hold a letter; exact where a script is
    weighed (non-ASCII texts) or the count decides "und" (below 3), else at least 3.

    Three letters in a row lie in one word, so a text holding them has 3 letters or more:
    only the other texts' words are checked one by one.
    """
    count = np.full(len(sample), 3.0)
    exact = np.flatnonzero(~ascii_only | ~pc.match_substring_regex(sample, r"\pL{3}").to_numpy(
        zero_copy_only=False))
    if len(exact):
        chosen = np.zeros(len(sample), dtype=bool)
        chosen[exact] = True
        picked = chosen[rows]
        words = words.filter(pa.array(picked))
        alpha = pc.match_substring_regex(words, r"\pL").to_numpy(zero_copy_only=False)
        sizes = np.where(alpha, pc.utf8_length(words).to_numpy(zero_copy_only=False), 0)
        count[exact] = np.bincount(rows[picked], weights=sizes, minlength=len(sample))[exact]
    return count


def languages(values: pa.Array) -> pa.Array:
    """An ISO 639-1 code per text, or ``"und"`` when there is too little text to tell."""
    sample = pc.utf8_slice_codeunits(texts(values), 0, SAMPLE_CHARS)
    words = pc.utf8_split_whitespace(pc.utf8_lower(sample))
    offsets = list_offsets(words)
    flat = pc.utf8_trim(flat_values(words), characters=_PUNCTUATION)
    rows = np.repeat(np.arange(len(values)), np.diff(offsets))
    ascii_only = pc.string_is_ascii(sample).to_numpy(zero_copy_only=False)
    letters = _letters(sample, flat, rows, ascii_only)
    found = pc.index_in(flat, _VOCABULARY).to_numpy(zero_copy_only=False)
    known = ~np.isnan(found) if found.dtype.kind == "f" else found >= 0
    index = np.where(known, np.nan_to_num(found), 0).astype(np.int64)[known]
    # One count per (row, language) of every known word's languages.
    repeats = _MEMBER_COUNT[index]
    member = np.repeat(_MEMBER_START[index], repeats) + (
        np.arange(repeats.sum()) - np.repeat(np.cumsum(repeats) - repeats, repeats))
    cells = np.repeat(rows[known], repeats) * len(_CODES) + _MEMBER_LANGS[member]
    scores = np.bincount(cells, minlength=len(values) * len(_CODES)).reshape(
        len(values), len(_CODES)).T
    best = np.argmax(scores, axis=0)
    codes = np.array(_CODES, dtype=object)
    result = np.where(scores[best, np.arange(len(values))] > 0, codes[best], "en").astype(object)
    undecided = np.flatnonzero(~ascii_only)
    if len(undecided):
        chosen = pc.take(sample, pa.array(undecided))
        threshold = np.maximum(2, letters[undecided] // 10)
        for code, pattern in _SCRIPTS:
            counts = pc.count_substring_regex(chosen, pattern).to_numpy(zero_copy_only=False)
            hit = counts >= threshold
            result[undecided[hit]] = code
            keep = ~hit
            undecided, chosen, threshold = (undecided[keep], chosen.filter(pa.array(keep)),
                                            threshold[keep])
            if not len(undecided):
                break
    result[letters < 3] = "und"
    return pa.array(result, pa.string())


def guess_language(text: str) -> str:
    """The language of one text (``languages`` on a batch of one)."""
    return languages(pa.array([text]))[0].as_py()
