"""The import graph of bot/: no module imports itself through others (an import circle).

The layer contracts are import-linter's (pyproject.toml, `lint-imports` in scripts/test); this is the part it has
no contract for between modules of different packages.
"""

from __future__ import annotations

import grimp


def circles(graph: grimp.ImportGraph) -> list[tuple[str, ...]]:
    """Each module that some module it imports leads back to, with the chain that does."""
    found = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            if chain is not None:
                found.append((module, *chain))
    return found


def test_no_module_of_bot_imports_itself_through_others():
    graph = grimp.build_graph("bot")
    assert circles(graph) == []


def test_the_check_finds_a_circle():
    graph = grimp.ImportGraph()
    for name in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(name)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.c")
    graph.add_import(importer="pkg.c", imported="pkg.a")
    assert ("pkg.a", "pkg.b", "pkg.c", "pkg.a") in circles(graph)
