"""BFCL helpers: type normalisation and user turns."""

from __future__ import annotations

from distillwatch.simulate.text.bfcl import normalise_types, user_turns


def test_normalise_types_is_recursive_and_leaves_property_names_alone():
    schema = {
        "name": "f",
        "parameters": {
            "type": "dict",
            "properties": {
                "type": {"type": "String", "description": "a property called type"},
                "xs": {"type": "array", "items": {"type": "float"}},
                "m": {"type": "HashMap", "properties": {"k": {"type": "tuple"}}},
                "weird": {"type": "Something"},
            },
            "required": ["type"],
        },
    }

    assert normalise_types(schema) == {
        "name": "f",
        "parameters": {
            "type": "object",
            "properties": {
                "type": {"type": "string", "description": "a property called type"},
                "xs": {"type": "array", "items": {"type": "number"}},
                "m": {"type": "object", "properties": {"k": {"type": "array"}}},
                "weird": {"type": "Something"},
            },
            "required": ["type"],
        },
    }


def test_user_turns_keep_user_messages_per_turn():
    question = [
        [{"role": "system", "content": "sys"}, {"role": "user", "content": "first"}],
        [],
        [{"role": "user", "content": "second"}, {"role": "user", "content": "more"}],
    ]

    assert user_turns(question) == ("first", "second\nmore")
