"""Safe expressions for derived parameters and limit conditions.

An expression is parsed with Python's `ast` and only a whitelist is accepted: numbers,
strings, booleans, parameter names (`BATT_V`, or `POWER_HK.BATT_V`), arithmetic
(+ - * / // % **), comparisons, `and`/`or`/`not`, `x if c else y`, and the functions
abs, min, max, sqrt, round. Anything else (attribute access on values, indexing,
lambdas, comprehensions, other calls) is refused when the mission database is loaded.
The accepted tree is compiled to nested closures; nothing is ever passed to `eval`.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Env = Mapping[str, Any]
Compiled = Callable[[Env], Any]


def _power(base: Any, exponent: Any) -> Any:
    """`**`, refused for exponents that would take seconds or gigabytes to compute."""
    if isinstance(exponent, int | float) and abs(exponent) > 64:
        raise ValueError(f"exponent {exponent} is too large (at most 64)")
    return operator.pow(base, exponent)


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: _power,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
    "round": round,
}


class ExpressionError(ValueError):
    """An expression that is not valid or not allowed; the message says which part."""


@dataclass(frozen=True)
class Expression:
    """A compiled expression: `names` it reads, and `evaluate(env)`.

    `evaluate` raises KeyError for a name missing from `env`, and ArithmeticError /
    TypeError / ValueError for a bad operation at run time (division by zero...).
    """

    text: str
    names: frozenset[str]
    evaluate: Compiled


def compile_expression(text: str) -> Expression:
    """Parse and check `text`; raise ExpressionError saying what is not allowed."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise ExpressionError(
            f"not a valid expression: {error.msg} at column {error.offset}"
        ) from None
    names: set[str] = set()
    compiled = _compile(tree.body, names)
    return Expression(text, frozenset(names), compiled)


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _compile(node: ast.expr, names: set[str]) -> Compiled:
    if isinstance(node, ast.Constant):
        value = node.value
        if not isinstance(value, int | float | str | bool):
            raise ExpressionError(f"constant {value!r} is not allowed")
        return lambda env: value
    dotted = _dotted(node)
    if dotted is not None:
        names.add(dotted)
        return lambda env: env[dotted]
    if isinstance(node, ast.BinOp):
        binary = _BINARY.get(type(node.op))
        if binary is None:
            raise ExpressionError(f"operator {type(node.op).__name__} is not allowed")
        left, right = _compile(node.left, names), _compile(node.right, names)
        return lambda env: binary(left(env), right(env))
    if isinstance(node, ast.UnaryOp):
        operand = _compile(node.operand, names)
        if isinstance(node.op, ast.USub):
            return lambda env: -operand(env)
        if isinstance(node.op, ast.UAdd):
            return lambda env: +operand(env)
        if isinstance(node.op, ast.Not):
            return lambda env: not operand(env)
        raise ExpressionError(f"operator {type(node.op).__name__} is not allowed")
    if isinstance(node, ast.BoolOp):
        parts = [_compile(v, names) for v in node.values]
        if isinstance(node.op, ast.And):
            return lambda env: all(p(env) for p in parts)
        return lambda env: any(p(env) for p in parts)
    if isinstance(node, ast.Compare):
        first = _compile(node.left, names)
        ops = []
        for op_node, comparator in zip(node.ops, node.comparators, strict=True):
            op = _COMPARE.get(type(op_node))
            if op is None:
                raise ExpressionError(f"comparison {type(op_node).__name__} is not allowed")
            ops.append((op, _compile(comparator, names)))

        def compare(env: Env) -> bool:
            left = first(env)
            for op, right_of in ops:
                right = right_of(env)
                if not op(left, right):
                    return False
                left = right
            return True

        return compare
    if isinstance(node, ast.IfExp):
        test, body, orelse = (_compile(n, names) for n in (node.test, node.body, node.orelse))
        return lambda env: body(env) if test(env) else orelse(env)
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        function = _FUNCTIONS.get(name or "")
        if function is None or node.keywords:
            allowed = ", ".join(sorted(_FUNCTIONS))
            raise ExpressionError(
                f"call of {ast.unparse(node.func)} is not allowed (only {allowed})"
            )
        args = [_compile(a, names) for a in node.args]
        return lambda env: function(*(a(env) for a in args))
    raise ExpressionError(f"{type(node).__name__} ({ast.unparse(node)}) is not allowed")
