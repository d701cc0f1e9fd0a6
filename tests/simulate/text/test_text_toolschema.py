"""Tool schemas from Python source, built with ast."""

from __future__ import annotations

from distillwatch.simulate.text.toolschema import function_tools, parse_docstring

ALIASES = '''
from typing import Literal
Colour = Literal["red", "green"]
'''

TOOLKIT = '''
from typing import List, Optional
from models import Colour


def is_tool(kind):
    return lambda f: f


class Toolkit(Base):
    """Tools."""

    def _helper(self, x: str) -> str:
        """Not a tool."""

    def undecorated(self, x: str) -> str:
        """Not a tool either."""

    @is_tool(ToolType.WRITE)
    def paint(self, item_ids: List[str], colour: Colour, coats: int, glossy: bool,
              note: Optional[str] = None, *, price: float, extra: "dict" = None) -> str:
        """
        Paint some items.

        Longer explanation
        over two lines.

        Args:
            item_ids: The items,
                continued on a second line.
            colour: The colour.
            coats: How many coats.
            price: The price.

        Returns:
            A receipt.
        """

    @is_tool
    def look(self, target: "Thing | dict") -> dict:
        """Look at something."""

    # @is_tool(ToolType.THINK)
    # def think(self, thought: str) -> str: ...
'''


def test_only_decorated_methods_become_tools():
    tools = function_tools(TOOLKIT, "is_tool", ALIASES)

    assert [t["function"]["name"] for t in tools] == ["look", "paint"]
    assert all(t["type"] == "function" for t in tools)


def test_parameters_types_descriptions_and_required():
    paint = function_tools(TOOLKIT, "is_tool", ALIASES)[1]["function"]
    parameters = paint["parameters"]

    assert paint["description"] == "Paint some items.\n\nLonger explanation over two lines."
    assert parameters["type"] == "object"
    assert parameters["properties"] == {
        "item_ids": {"type": "array", "items": {"type": "string"},
                     "description": "The items, continued on a second line."},
        "colour": {"type": "string", "enum": ["red", "green"], "description": "The colour."},
        "coats": {"type": "integer", "description": "How many coats."},
        "glossy": {"type": "boolean"},
        "note": {"type": "string"},
        "price": {"type": "number", "description": "The price."},
        "extra": {"type": "object"},
    }
    assert parameters["required"] == ["item_ids", "colour", "coats", "glossy", "price"]


def test_union_of_objects_is_an_object():
    look = function_tools(TOOLKIT, "is_tool")[0]["function"]

    assert look["parameters"]["properties"]["target"] == {"type": "object"}
    assert look["parameters"]["required"] == ["target"]


def test_parse_docstring_without_sections():
    assert parse_docstring("  Just a summary.  ") == ("Just a summary.", {})
    assert parse_docstring(None) == ("", {})
