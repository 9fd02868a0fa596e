"""JUnit XML, written one way for every kind of run (tests, bench).

CI systems read one testsuite per file: its counts, its properties (what
was run where), and a testcase per result.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from pathlib import Path


def suite(name: str, counts: Mapping[str, str],
          properties: Iterable[tuple[str, object]]) -> tuple[ET.Element, ET.Element]:
    """The root and its one testsuite: ``counts`` are its attributes after the name."""
    root = ET.Element("testsuites")
    ts = ET.SubElement(root, "testsuite", {"name": name, **counts})
    add_properties(ts, properties)
    return root, ts


def add_properties(parent: ET.Element, properties: Iterable[tuple[str, object]]) -> None:
    props = ET.SubElement(parent, "properties")
    for key, value in properties:
        ET.SubElement(props, "property", {"name": key, "value": str(value)})


def finish(root: ET.Element) -> ET.ElementTree:
    ET.indent(root)
    return ET.ElementTree(root)


def write(tree: ET.ElementTree, path: Path) -> None:
    tree.write(path, encoding="unicode", xml_declaration=True)
