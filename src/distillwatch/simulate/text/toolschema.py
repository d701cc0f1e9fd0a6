"""OpenAI function-tool schemas built from Python source with :mod:`ast`, never by importing it.

A toolkit class marks its tools with a decorator (tau2: ``@is_tool(ToolType.READ)``); each such
method becomes ``{"type": "function", "function": {"name", "description", "parameters"}}``.
Parameter types come from the annotations, parameter descriptions from the Google-style
``Args:`` section of the docstring, and ``required`` lists the parameters without a default.
Type aliases defined in a companion module (``CabinClass = Literal["business", ...]``) are
resolved when its source is given.
"""

from __future__ import annotations

import ast
import inspect
import re
from typing import Any

_SCALARS: dict[str, str] = {"str": "string", "int": "integer", "float": "number",
                            "bool": "boolean"}
_ARRAYS = frozenset({"list", "List", "tuple", "Tuple", "set", "Set", "Sequence", "Iterable"})
_UNWRAP = frozenset({"Optional", "Annotated", "Required", "NotRequired"})
_SECTION = re.compile(r"^(Args|Arguments|Parameters|Returns?|Yields?|Raises|Examples?|Notes?|"
                      r"Attributes|See Also|Warnings?)\s*:\s*$")
_ARG_LINE = re.compile(r"^(?P<name>\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(?P<text>.*)$")


def module_aliases(source: str) -> dict[str, ast.expr]:
    """Module-level ``Name = <type expression>`` assignments of a module.

    Args:
        source: Python source.

    Returns:
        Alias name -> the assigned expression.
    """
    aliases: dict[str, ast.expr] = {}
    for node in ast.parse(source).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)):
            aliases[node.targets[0].id] = node.value
        elif (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
              and node.value is not None):
            aliases[node.target.id] = node.value
    return aliases


def annotation_schema(node: ast.expr | None, aliases: dict[str, ast.expr],
                      _seen: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The JSON Schema of one annotation.

    ``str``/``int``/``float``/``bool`` map to their JSON types, ``list[X]`` to an array of X,
    ``Literal[...]`` to an enum, ``Optional[X]`` and ``Annotated[X, ...]`` to X; a union whose
    members agree on one type takes it; everything else (``dict``, models) is an object.

    Args:
        node: The annotation expression (None when the parameter has none).
        aliases: Type aliases by name (see :func:`module_aliases`).

    Returns:
        A schema with at least ``type``.
    """
    if node is None:
        return {"type": "object"}
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # forward reference
        try:
            return annotation_schema(ast.parse(node.value, mode="eval").body, aliases, _seen)
        except SyntaxError:
            return {"type": "object"}
    name = _dotted_name(node)
    if name is not None:
        if name in _SCALARS:
            return {"type": _SCALARS[name]}
        if name in _ARRAYS:
            return {"type": "array"}
        if name in aliases and name not in _seen:
            return annotation_schema(aliases[name], aliases, _seen | {name})
        return {"type": "object"}
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _union([node.left, node.right], aliases, _seen)
    if isinstance(node, ast.Subscript):
        return _subscript(node, aliases, _seen)
    return {"type": "object"}


def _dotted_name(node: ast.expr) -> str | None:
    """``str`` -> "str", ``typing.List`` -> "List"; None for anything but a name."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _subscript(node: ast.Subscript, aliases: dict[str, ast.expr],
               seen: frozenset[str]) -> dict[str, Any]:
    outer = _dotted_name(node.value)
    args = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
    if outer in _UNWRAP:
        return annotation_schema(args[0], aliases, seen)
    if outer == "Union":
        return _union(args, aliases, seen)
    if outer == "Literal":
        values = [a.value for a in args if isinstance(a, ast.Constant)]
        kinds = {type(v) for v in values}
        json_type = {str: "string", int: "integer", float: "number", bool: "boolean"}.get(
            kinds.pop(), "string") if len(kinds) == 1 else "string"
        return {"type": json_type, "enum": values}
    if outer in _ARRAYS:
        schema: dict[str, Any] = {"type": "array"}
        if outer in ("list", "List", "set", "Set", "Sequence", "Iterable") and args:
            schema["items"] = annotation_schema(args[0], aliases, seen)
        return schema
    if outer is not None and outer in aliases and outer not in seen:
        return annotation_schema(aliases[outer], aliases, seen | {outer})
    return {"type": "object"}


def _union(members: list[ast.expr], aliases: dict[str, ast.expr],
           seen: frozenset[str]) -> dict[str, Any]:
    flat: list[ast.expr] = []
    stack = list(members)
    while stack:  # a | b | c parses as (a | b) | c
        member = stack.pop(0)
        if isinstance(member, ast.BinOp) and isinstance(member.op, ast.BitOr):
            stack[:0] = [member.left, member.right]
        elif not (isinstance(member, ast.Constant) and member.value is None):
            flat.append(member)
    schemas = [annotation_schema(m, aliases, seen) for m in flat]
    if len(schemas) == 1:
        return schemas[0]
    types = {s["type"] for s in schemas}
    return {"type": types.pop()} if len(types) == 1 else {"type": "object"}


def parse_docstring(docstring: str | None) -> tuple[str, dict[str, str]]:
    """The summary and the ``Args:`` descriptions of a Google-style docstring.

    Args:
        docstring: The raw docstring, or None.

    Returns:
        ``(description, {parameter: description})``; the description is the text before the
        first section, one line per paragraph.
    """
    lines = inspect.cleandoc(docstring or "").splitlines()
    summary: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    base_indent = 0
    for line in lines:
        stripped = line.strip()
        header = _SECTION.match(stripped) if len(line) == len(line.lstrip()) else None
        if header:
            section, current = header.group(1), None
            continue
        if section is None:
            summary.append(stripped)
            continue
        if section not in ("Args", "Arguments", "Parameters") or not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        match = _ARG_LINE.match(stripped)
        if match and (current is None or indent <= base_indent):
            current, base_indent = match["name"].lstrip("*"), indent
            args[current] = match["text"].strip()
        elif current is not None:
            args[current] = f"{args[current]} {stripped}".strip()
    paragraphs = " ".join(s if s else "\n\n" for s in summary).split("\n\n")
    description = "\n\n".join(" ".join(p.split()) for p in paragraphs if p.strip())
    return description, args


def function_tools(source: str, decorator: str, alias_source: str | None = None,
                   ) -> tuple[dict[str, Any], ...]:
    """OpenAI function tools for every method of ``source`` decorated with ``decorator``.

    Args:
        source: Python source of the toolkit module.
        decorator: The marking decorator's name, e.g. ``"is_tool"`` (called or bare).
        alias_source: Source of a module whose type aliases the annotations use.

    Returns:
        The tools, sorted by name.

    Raises:
        SyntaxError: If ``source`` or ``alias_source`` is not valid Python.

    Example:
        >>> tools = function_tools(tools_py, "is_tool", data_model_py)
        >>> tools[0]["function"]["parameters"]["type"]
        'object'
    """
    aliases = module_aliases(alias_source) if alias_source else {}
    aliases.update(module_aliases(source))
    tools = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        for item in node.body:
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and _decorated(
                    item, decorator):
                tools.append(_tool(item, aliases))
    return tuple(sorted(tools, key=lambda t: t["function"]["name"]))


def _decorated(function: ast.FunctionDef | ast.AsyncFunctionDef, decorator: str) -> bool:
    for node in function.decorator_list:
        target = node.func if isinstance(node, ast.Call) else node
        if _dotted_name(target) == decorator:
            return True
    return False


def _tool(function: ast.FunctionDef | ast.AsyncFunctionDef,
          aliases: dict[str, ast.expr]) -> dict[str, Any]:
    description, arg_docs = parse_docstring(ast.get_docstring(function, clean=False))
    arguments = function.args
    positional = [*arguments.posonlyargs, *arguments.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(arguments.defaults))
    defaults += list(arguments.defaults)
    pairs = list(zip(positional, defaults, strict=True))
    pairs += list(zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True))
    properties: dict[str, Any] = {}
    required: list[str] = []
    for arg, default in pairs:
        if arg.arg in ("self", "cls"):
            continue
        schema = annotation_schema(arg.annotation, aliases)
        if arg.arg in arg_docs:
            schema["description"] = arg_docs[arg.arg]
        properties[arg.arg] = schema
        if default is None:
            required.append(arg.arg)
    return {
        "type": "function",
        "function": {
            "name": function.name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }
