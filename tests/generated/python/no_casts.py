"""Fails if FILE holds a `cast(...)`, a use of `Any` or a `# type: ignore`: mypy --strict cannot
forbid those, and with them the journey would prove nothing about the generated types.
Usage: python no_casts.py FILE
"""

import ast
import io
import sys
import tokenize


def main(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    found = []
    for node in ast.walk(ast.parse(text, path)):
        name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
        if name in ("cast", "Any"):
            found.append(f"{path}:{node.lineno}: {name}")
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT and "type: ignore" in token.string:
            found.append(f"{path}:{token.start[0]}: type: ignore")
    if found:
        print("\n".join(found), file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
