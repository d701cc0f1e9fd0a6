"""Settings are strict: unknown keys and wrong types are errors, never defaults."""

from __future__ import annotations

import pytest

from distillwatch.exceptions import DistillwatchConfigError
from distillwatch.settings import Settings


def test_defaults_and_overrides():
    settings = Settings.from_path_or_dict({"link": {"edge_min_families": 3},
                                           "score": {"min_campaign_accounts": 5}})
    assert settings.link.edge_min_families == 3
    assert settings.score.min_campaign_accounts == 5
    assert settings.link.max_block == Settings().link.max_block


@pytest.mark.parametrize("data, message", [
    ({"lnk": {}}, "Unknown settings key"),
    ({"link": {"edge_families": 2}}, "Unknown key.*edge_families"),
    ({"link": {"edge_min_families": 2.5}}, "must be a int"),
    ({"score": {"prior_exchanges": "many"}}, "must be a float"),
])
def test_bad_settings_are_errors(data, message):
    with pytest.raises(DistillwatchConfigError, match=message):
        Settings.from_path_or_dict(data)


def test_settings_file(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("link:\n  max_block: 500\ndisabled_signals: [geo_mismatch]\n")
    settings = Settings.from_path_or_dict(path)
    assert settings.link.max_block == 500
    assert settings.disabled_signals == ("geo_mismatch",)
    path.write_text("link: [")
    with pytest.raises(DistillwatchConfigError, match="does not parse"):
        Settings.from_path_or_dict(path)
