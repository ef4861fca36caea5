"""Bounds on a pickle stream, checked before any of it is unpickled.

An allow-listing unpickler stops code from running, but not a tiny pickle that makes the
unpickler build or hash an object graph of exponential size (a tuple of two references
to a tuple of two references ..., 80 deep, used as a dict key), or one that builds a
list of 50 million ints. :func:`check_pickle` walks the opcodes (``pickletools.genops``,
pure Python, nothing built) and simulates the stack with one cell per object, memo
references sharing their cell: the number of opcodes, the size every object would have
if its references were expanded, and the nesting depth are all bounded, and a violation
is a ``CheckpointError`` naming the file, the part and the limit.
"""
from __future__ import annotations

import io
import pickletools

from bench.core.errors import CheckpointError

MAX_OPS = 1_000_000           # a ResNet-50 state_dict pickle has ~5,000
MAX_EXPANDED = 1_000_000      # objects one value may reach, references expanded
MAX_DEPTH = 32                # nesting of containers (a state_dict's is ~4)
MAX_PICKLE_BYTES = 64 << 20   # a state_dict's data.pkl is well under 1 MiB per 1,000 tensors
MUTATORS = {"APPEND", "APPENDS", "SETITEM", "SETITEMS", "BUILD", "ADDITEMS"}
GETS = {"GET", "BINGET", "LONG_BINGET"}
PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}


class _Cell:
    __slots__ = ("size", "depth")

    def __init__(self, size: int = 1, depth: int = 0):
        self.size, self.depth = size, depth


def check_pickle(stream: io.BufferedIOBase, path, what: str) -> None:
    """Walk one pickle from ``stream``'s position to its STOP; the stream is left after it."""
    stack: list = []
    memo: dict = {}
    mark = object()

    def pop_to_mark() -> list:
        items = []
        while stack and stack[-1] is not mark:
            items.append(stack.pop())
        if not stack:
            raise CheckpointError(f"{path}: the {what} pickle pops a mark it never set")
        stack.pop()
        return items

    def pop(n: int) -> list:
        if len(stack) < n:
            raise CheckpointError(f"{path}: the {what} pickle pops an empty stack")
        items = stack[len(stack) - n:] if n else []
        del stack[len(stack) - n:]
        return items

    try:
        for count, (op, arg, _pos) in enumerate(pickletools.genops(stream), 1):
            if count > MAX_OPS:
                raise CheckpointError(f"{path}: the {what} pickle has more than {MAX_OPS} opcodes")
            name = op.name
            if name in ("PROTO", "FRAME", "STOP"):
                continue
            if name == "MARK":
                stack.append(mark)
                continue
            if name in PUTS or name == "MEMOIZE":
                if not stack or stack[-1] is mark:
                    raise CheckpointError(f"{path}: the {what} pickle memoizes nothing")
                if name in PUTS and not (isinstance(arg, int) and 0 <= arg < MAX_OPS):
                    # the C unpickler's memo is an array: a huge index is a huge allocation
                    raise CheckpointError(f"{path}: the {what} pickle memoizes at index {arg} (limit {MAX_OPS})")
                memo[arg if name in PUTS else len(memo)] = stack[-1]
                continue
            if name in GETS:
                if arg not in memo:
                    raise CheckpointError(f"{path}: the {what} pickle reads memo {arg!r} it never stored")
                stack.append(memo[arg])
                continue
            if name == "DUP":
                stack.append(stack[-1] if stack else _Cell())
                continue
            before = op.stack_before
            if pickletools.markobject in before:
                items = pop_to_mark() + pop(before.index(pickletools.markobject))
            else:
                items = pop(len(before))
            if any(i is mark for i in items):
                raise CheckpointError(f"{path}: the {what} pickle uses a mark as a value")
            if not op.stack_after:
                continue
            if name in MUTATORS and items:
                cell, parts = items[-1] if pickletools.markobject in before else items[0], items
                parts = [i for i in parts if i is not cell]
                cell.size += sum(p.size for p in parts)
                cell.depth = max([cell.depth] + [p.depth + 1 for p in parts])
            else:
                cell = _Cell(1 + sum(i.size for i in items), 1 + max((i.depth for i in items), default=-1))
            if cell.size > MAX_EXPANDED or cell.depth > MAX_DEPTH:
                raise CheckpointError(f"{path}: the {what} pickle builds a value of {cell.size} objects nested "
                                      f"{cell.depth} deep (limits {MAX_EXPANDED}, {MAX_DEPTH}): refused")
            stack.append(cell)
    except ValueError as e:  # genops: a truncated or unknown opcode
        raise CheckpointError(f"{path}: the {what} pickle is malformed: {str(e)[:120]}") from None
