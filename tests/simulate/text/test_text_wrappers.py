"""lm-eval prompt wrappers: Jinja normalisation, CoT detection, language codes, YAML loading."""

from __future__ import annotations

import pytest

from distillwatch.simulate.text.fewshot import extract_fewshot, sample_question
from distillwatch.simulate.text.jinja import split_concatenation, template_candidates
from distillwatch.simulate.text.language import code_from_filename, normalise_code
from distillwatch.simulate.text.taskyaml import TaskConfigs, load_task_configs
from distillwatch.simulate.text.wheel import Wheel
from distillwatch.simulate.text.wrappers import extract_wrappers, is_cot_wrapper

MGSM_FR = ('{% if answer is not none %}{{question+"\\nRéponse étape par étape :"}}'
           '{% else %}{{"Question : "+question+"\\nRéponse étape par étape :"}}{% endif %}')


@pytest.mark.parametrize("text, expected", [
    ("Q: {{question}}\nA: Let's think step by step.",
     ["Q: {task}\nA: Let's think step by step."]),
    ("Q: {{ question.strip() }}\nA:", ["Q: {task}\nA:"]),
    ("{{input | trim}} step by step", ["{task} step by step"]),
    (MGSM_FR, ["Question : {task}\nRéponse étape par étape :",
               "{task}\nRéponse étape par étape :"]),
    ("{{body if body is defined}} {{question}}", ["{task} {task}"]),
    ("{% for c in choices %}{{c}}{% endfor %}", []),
    ("{{ 'a + b' + x }}", ["a + b{task}"]),
])
def test_template_candidates(text, expected):
    assert template_candidates(text) == expected


def test_split_concatenation_respects_strings_and_brackets():
    assert split_concatenation("'x+y' + f(a+b) + \"q\\\"+\"") == ["'x+y'", "f(a+b)", '"q\\"+"']


@pytest.mark.parametrize("template, expected", [
    ("Q: {task}\nA: Let's think step by step.", True),
    ("Question : {task}\nRéponse étape par étape :", True),
    ("Swali: {task}\nJibu la Hatua kwa Hatua:", True),
    ("Given the following problem, reason and give a final answer.\n{task}", True),
    ("Q: {task}\nA:", False),  # no request for reasoning
    ("Is this reasonable? {task}", False),  # "reasonable" is not "reason"
    ("{task} and {task}: think step by step", False),  # two slots
    ("<image>{task}\nThink step by step.", False),  # image questions
])
def test_is_cot_wrapper(template, expected):
    assert is_cot_wrapper(template) is expected


@pytest.mark.parametrize("path, expected", [
    ("lm_eval/tasks/mgsm/native_cot/mgsm_native_cot_fr.yaml", "fr"),
    ("lm_eval/tasks/afrimgsm/direct_cot/prompt_1/afrimgsm_cot_swa.yaml", "sw"),
    ("lm_eval/tasks/afrimgsm/direct_cot/prompt_1/afrimgsm_cot_vai.yaml", "vai"),
    ("lm_eval/tasks/mgsm/en_cot/mgsm_en_cot_zh.yaml", "zh"),
    ("lm_eval/tasks/afrimgsm/direct_cot/prompt_1/afrimgsm_cot_yaml", None),
    ("lm_eval/tasks/gsm8k/gsm8k-cot.yaml", None),
])
def test_code_from_filename(path, expected):
    assert code_from_filename(path) == expected


def test_normalise_code():
    assert [normalise_code(c) for c in ("arz", "swa", "FR", "pcm")] == ["ar", "sw", "fr", "pcm"]


def test_yaml_with_custom_tags_loads_and_bad_files_are_counted(make_wheel):
    path = make_wheel("lm_eval-0-py3-none-any.whl", {
        "lm_eval/tasks/a/a_fr.yaml": ("doc_to_text: '" + MGSM_FR.replace("'", "''") + "'\n"
                                      "process_docs: !function utils.process\n"),
        "lm_eval/tasks/a/shared_yaml": "doc_to_text: \"Q: {{question}}\\nA: Let's think "
                                       "step by step.\"\n",
        "lm_eval/tasks/a/copy_de.yaml": "doc_to_text: \"Q: {{question}}\\nA: Let's think "
                                        "step by step.\"\n",
        "lm_eval/tasks/a/broken.yaml": "doc_to_text: [unclosed\n",
        "lm_eval/tasks/a/unrelated.yaml": "task: nothing_to_see\n",
        "lm_eval/tasks/a/fewshot.yaml": (
            "doc_to_text: !function utils.doc_to_text\n"
            "fewshot_config:\n  samples:\n"
            "    - {question: 'What is 2+2?', target: 'Let us add. The answer is 4.'}\n"
            "    - {input: 'not True is', target: 'False'}\n"
            "    - {question: 'What is 2+2?', target: 'duplicate'}\n"
            "    - {json_schema: '{}'}\n"),
    })
    with Wheel(path) as wheel:
        configs = load_task_configs(wheel)

    assert configs.skipped == 1
    assert [name.rsplit("/", 1)[1] for name, _ in configs.configs] == [
        "a_fr.yaml", "copy_de.yaml", "fewshot.yaml", "shared_yaml"]
    assert dict(configs.configs)["lm_eval/tasks/a/a_fr.yaml"]["process_docs"] is None

    wrappers = extract_wrappers(configs)
    assert [(w.template, w.language, w.source.rsplit("/", 1)[1]) for w in wrappers] == [
        ("Question : {task}\nRéponse étape par étape :", "fr", "a_fr.yaml"),
        # filed under German and under no language: identified from its own (English) text
        ("Q: {task}\nA: Let's think step by step.", "en", "copy_de.yaml"),
    ]
    fewshot = extract_fewshot(configs)
    assert [(f.question, f.answer) for f in fewshot] == [
        ("What is 2+2?", "Let us add. The answer is 4."), ("not True is", "False")]


def test_sample_question_folds_context_and_options():
    sample = {"context": "A ferry story.", "question": "Can it sail?", "answer": "Yes",
              "A": "yes", "B": "no"}

    found = sample_question(sample)

    assert found is not None
    assert found.question == "A ferry story.\nCan it sail?\nA. yes\nB. no"
    assert found.answer == "Yes"
    assert sample_question({"json_schema": "{}"}) is None


def test_empty_configs_give_nothing():
    empty = TaskConfigs((), 0)
    assert extract_wrappers(empty) == () and extract_fewshot(empty) == ()
