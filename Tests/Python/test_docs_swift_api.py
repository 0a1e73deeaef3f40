"""docs/SWIFT_API.md's example is the code that Tests/CSDRuntimeTests/SwiftAPITests.swift compiles and runs.

The doc's first ```swift block under "## Example" must equal, line for line, the lines between the
test file's "// BEGIN docs/SWIFT_API.md example" and "// END docs/SWIFT_API.md example" markers.
"""

from __future__ import annotations

import os
import re

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DOC = os.path.join(REPO, "docs", "SWIFT_API.md")
TEST = os.path.join(REPO, "Tests", "CSDRuntimeTests", "SwiftAPITests.swift")


def doc_example() -> list[str]:
    text = open(DOC, encoding="utf-8").read()
    section = text.split("\n## Example\n", 1)[1]
    m = re.search(r"^```swift\n(.*?)^```$", section, re.S | re.M)
    assert m, "docs/SWIFT_API.md: no ```swift block under ## Example"
    return m.group(1).rstrip("\n").split("\n")


def example_in_test() -> list[str]:
    lines = open(TEST, encoding="utf-8").read().split("\n")
    begin = next(i for i, line in enumerate(lines) if line.startswith("// BEGIN docs/SWIFT_API.md example"))
    end = next(i for i, line in enumerate(lines) if line.startswith("// END docs/SWIFT_API.md example"))
    return lines[begin + 1:end]


def test_the_docs_example_is_the_tested_code():
    doc, tested = doc_example(), example_in_test()
    assert len(doc) >= 5
    assert doc == tested
