"""Language codes: identifying the language of a text and reading codes out of file names.

Codes are ISO 639-1 where the language has one (``"fr"``, ``"sw"``); py3langid's regional
varieties are folded into their macrolanguage (Egyptian Arabic -> ``"ar"``) and a language
without a two-letter code keeps its three-letter one (``"vai"``).
"""

from __future__ import annotations

import re

# Three-letter (ISO 639-2/3) codes as they appear in lm-eval file names and py3langid's
# regional classes, mapped to ISO 639-1.
_THREE_TO_TWO: dict[str, str] = {
    "afr": "af", "aka": "ak", "amh": "am", "ara": "ar", "ary": "ar", "arz": "ar", "ben": "bn",
    "cat": "ca", "ces": "cs", "chi": "zh", "dan": "da", "deu": "de", "ell": "el", "eng": "en",
    "eus": "eu", "ewe": "ee", "fas": "fa", "fin": "fi", "fra": "fr", "fre": "fr", "ger": "de",
    "glg": "gl", "gug": "gn", "guj": "gu", "hau": "ha", "heb": "he", "hin": "hi", "hun": "hu",
    "ibo": "ig", "ind": "id", "ita": "it", "jpn": "ja", "kan": "kn", "kik": "ki", "kin": "rw",
    "kor": "ko", "lin": "ln", "lug": "lg", "mal": "ml", "mar": "mr", "mlg": "mg", "nld": "nl",
    "nor": "no", "nya": "ny", "orm": "om", "pan": "pa", "pol": "pl", "por": "pt", "ron": "ro",
    "rus": "ru", "sna": "sn", "som": "so", "sot": "st", "spa": "es", "swa": "sw", "swe": "sv",
    "tam": "ta", "tel": "te", "tha": "th", "tir": "ti", "tur": "tr", "twi": "tw", "ukr": "uk",
    "urd": "ur", "uzs": "uz", "vie": "vi", "wol": "wo", "wuu": "zh", "xho": "xh", "yor": "yo",
    "yue": "zh", "zho": "zh", "zul": "zu",
}
# Three-letter codes of languages that have no ISO 639-1 code but do appear in file names.
_THREE_ONLY = frozenset({"vai", "fuv", "kab", "pcm", "ace"})
# Two-letter tokens that are language codes in file names; "no", "it" and friends are
# included because lm-eval uses them that way, and only a file name's last token is read.
_TWO = frozenset({
    "af", "ak", "am", "ar", "as", "az", "be", "bg", "bn", "br", "bs", "ca", "cs", "cy", "da",
    "de", "ee", "el", "en", "eo", "es", "et", "eu", "fa", "fi", "fo", "fr", "fy", "ga", "gd",
    "gl", "gn", "gu", "ha", "he", "hi", "hr", "ht", "hu", "hy", "id", "ig", "is", "it", "ja",
    "jv", "ka", "ki", "kk", "km", "kn", "ko", "ku", "ky", "la", "lb", "lg", "ln", "lo", "lt",
    "lv", "mg", "mk", "ml", "mn", "mr", "ms", "mt", "my", "nb", "ne", "nl", "nn", "no", "ny",
    "oc", "om", "or", "pa", "pl", "ps", "pt", "qu", "ro", "ru", "rw", "sa", "si", "sk", "sl",
    "sn", "so", "sq", "sr", "st", "sv", "sw", "ta", "te", "tg", "th", "ti", "tk", "tl", "tr",
    "tt", "tw", "ug", "uk", "ur", "uz", "vi", "wo", "xh", "yo", "zh", "zu",
})
_TOKEN_SPLIT = re.compile(r"[_\-.]")


def normalise_code(code: str) -> str:
    """Fold a py3langid or ISO 639-2/3 code into ISO 639-1 where one exists.

    Args:
        code: E.g. ``"fr"``, ``"arz"``, ``"swa"``.

    Returns:
        The two-letter code, or ``code`` unchanged (lower-cased) when there is none.
    """
    code = code.lower()
    return _THREE_TO_TWO.get(code, code)


def code_from_filename(path: str) -> str | None:
    """The language code a task file's name ends with, if any.

    Only the last token of the file name (split at ``_``, ``-`` and ``.``, after dropping a
    ``yaml`` suffix) is read: ``mgsm_native_cot_fr.yaml`` -> ``"fr"``,
    ``afrimgsm_cot_swa.yaml`` -> ``"sw"``, ``afrimgsm_cot_yaml`` -> ``None``.

    Args:
        path: A path inside a wheel.

    Returns:
        An ISO 639-1 code (or a three-letter one for a language without it), or None.
    """
    stem = path.rsplit("/", 1)[-1]
    tokens = [t for t in _TOKEN_SPLIT.split(stem.lower()) if t]
    if tokens and tokens[-1] == "yaml":
        tokens.pop()
    if not tokens:
        return None
    last = tokens[-1]
    if last in _TWO:
        return last
    if last in _THREE_TO_TWO:
        return _THREE_TO_TWO[last]
    if last in _THREE_ONLY:
        return last
    return None


def identify(text: str) -> str:
    """The language of ``text`` according to py3langid, as an ISO 639-1 code.

    py3langid also knows languages and varieties without a two-letter code (Nigerian
    Pidgin, "no linguistic content"); the best-ranked language that has one (after folding
    varieties such as Egyptian Arabic into ``"ar"``) is returned. The model is loaded on first
    use (about half a second), never at import.

    Args:
        text: Any text; a few hundred characters are enough.

    Returns:
        A two-letter code.
    """
    import py3langid

    ranked = py3langid.rank(text)
    for code, _score in ranked:
        normalised = normalise_code(code)
        if len(normalised) == 2:
            return normalised
    return normalise_code(ranked[0][0])
