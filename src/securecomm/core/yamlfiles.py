"""Strict YAML reading that remembers where every value came from.

PyYAML silently keeps the last of two duplicate keys and forgets line numbers once a
document is built; policy files need both caught and reported, so we compose the node
tree ourselves and keep the line of every mapping, sequence and key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class PolicyFileError(ValueError):
    """A policy or policy-test file is malformed; the message names the file and line."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}, line {line}: {message}")
        self.file = file
        self.line = line


class YMap(dict):
    """A mapping that knows its own line and the line of each of its keys."""

    line: int
    key_lines: dict[str, int]


class YSeq(list):
    """A sequence that knows its own line and the line of each item."""

    line: int
    item_lines: list[int]


_scalar_constructor = yaml.SafeLoader(stream="")


def _construct(node: yaml.Node, file: str) -> Any:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        mapping = YMap()
        mapping.line = line
        mapping.key_lines = {}
        for key_node, value_node in node.value:
            key = _construct(key_node, file)
            if not isinstance(key, str):
                raise PolicyFileError(file, key_node.start_mark.line + 1, f"key {key!r} must be text")
            if key in mapping:
                raise PolicyFileError(
                    file,
                    key_node.start_mark.line + 1,
                    f"duplicate key '{key}' (first given on line {mapping.key_lines[key]})",
                )
            mapping.key_lines[key] = key_node.start_mark.line + 1
            mapping[key] = _construct(value_node, file)
        return mapping
    if isinstance(node, yaml.SequenceNode):
        sequence = YSeq()
        sequence.line = line
        sequence.item_lines = []
        for item in node.value:
            sequence.item_lines.append(item.start_mark.line + 1)
            sequence.append(_construct(item, file))
        return sequence
    return _scalar_constructor.construct_object(node, deep=True)


def load_yaml(path: Path, display_name: str | None = None) -> Any:
    """Parse one YAML document, rejecting duplicate keys, with line numbers kept."""
    name = display_name or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyFileError(name, 0, f"cannot read file: {error.strerror}") from error
    try:
        # libyaml's parser (when PyYAML has it) makes the same nodes, marks included, ten times faster:
        # a simulation reads every policy and parameter file before it starts.
        node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        raise PolicyFileError(name, mark.line + 1 if mark else 0, f"not valid YAML: {error.problem}") from error
    if node is None:
        raise PolicyFileError(name, 1, "the file is empty")
    return _construct(node, name)


def line_of(container: Any, key: str | int | None = None) -> int:
    """The line of a key in a YMap, of an item in a YSeq, or of the container itself."""
    if isinstance(container, YMap) and isinstance(key, str) and key in container.key_lines:
        return container.key_lines[key]
    if isinstance(container, YSeq) and isinstance(key, int) and key < len(container.item_lines):
        return container.item_lines[key]
    return getattr(container, "line", 0)
