"""Column helpers: remembered hashes are the hashes, per key and domain, and stay bounded."""

from __future__ import annotations

import pyarrow as pa

from distillwatch.fingerprint import arrays
from distillwatch.fingerprint.arrays import keyed_hash, keyed_hashes


def test_remembered_hashes_equal_fresh_ones_per_key_and_domain(monkeypatch):
    monkeypatch.setattr(arrays, "_remembered", {})
    words = pa.array(["alpha", "beta", None, "alpha", ""])
    for key in (b"k" * 16, b"j" * 16):
        for domain in (b"word", b"line"):
            fresh = keyed_hashes(key, domain, words)
            assert (keyed_hashes(key, domain, words, remember=True) == fresh).all()
            # The second call answers from memory, with the same values.
            assert (keyed_hashes(key, domain, words, remember=True) == fresh).all()
            assert int(fresh[0]) == keyed_hash(key, domain, "alpha") & (2**64 - 1)
    assert len(arrays._remembered) == 4
    assert keyed_hashes(b"k" * 16, b"word", words, remember=True)[0] != keyed_hashes(
        b"j" * 16, b"word", words, remember=True)[0]


def test_remembered_hashes_are_forgotten_past_the_bound(monkeypatch):
    monkeypatch.setattr(arrays, "_remembered", {})
    monkeypatch.setattr(arrays, "REMEMBERED", 10)
    many = pa.array([f"w{i}" for i in range(50)])
    first = keyed_hashes(b"k" * 16, b"word", many, remember=True)
    keyed_hashes(b"k" * 16, b"word", pa.array(["x"]), remember=True)
    (memory,) = arrays._remembered.values()
    assert len(memory) <= 11
    assert (keyed_hashes(b"k" * 16, b"word", many, remember=True) == first).all()
