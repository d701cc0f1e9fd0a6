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
# _MEMBERSHIP[word, language]: 1 where the word is one of the language's common words.
_MEMBERSHIP = np.array([[word in _LATIN_WORDS[code] for code in _CODES]
                        for word in _VOCABULARY.to_pylist()], dtype=float)
# Words are whitespace-separated, trimmed of punctuation; letters are the characters of words
# that hold a letter (scripts without spaces make one long word).
_PUNCTUATION = ".,;:!?¿¡()[]{}<>\"'«»“”‘’…-–—/*#_`~|"
SAMPLE_CHARS = 400


def languages(values: pa.Array) -> pa.Array:
    """An ISO 639-1 code per text, or ``"und"`` when there is too little text to tell."""
    sample = pc.utf8_slice_codeunits(texts(values), 0, SAMPLE_CHARS)
    words = pc.utf8_split_whitespace(pc.utf8_lower(sample))
    offsets = list_offsets(words)
    flat = pc.utf8_trim(flat_values(words), characters=_PUNCTUATION)
    rows = np.repeat(np.arange(len(values)), np.diff(offsets))
    alpha = pc.match_substring_regex(flat, r"\pL").to_numpy(zero_copy_only=False)
    letters = np.bincount(rows, weights=np.where(
        alpha, pc.utf8_length(flat).to_numpy(zero_copy_only=False), 0), minlength=len(values))
    found = pc.index_in(flat, _VOCABULARY).to_numpy(zero_copy_only=False)
    known = ~np.isnan(found) if found.dtype.kind == "f" else found >= 0
    index = np.where(known, np.nan_to_num(found), 0).astype(np.int64)
    scores = np.stack([np.bincount(rows[known], weights=_MEMBERSHIP[index[known], lang],
                                   minlength=len(values)) for lang in range(len(_CODES))])
    best = np.argmax(scores, axis=0)
    codes = np.array(_CODES, dtype=object)
    result = np.where(scores[best, np.arange(len(values))] > 0, codes[best], "en").astype(object)
    undecided = np.flatnonzero(~pc.string_is_ascii(sample).to_numpy(zero_copy_only=False))
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
