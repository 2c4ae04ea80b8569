"""The project's structural rules, checked on every run."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "modelyard"
MAX_MODULE_LINES = 800
MAX_FUNCTION_LINES = 60
VENDORS = ("anthropic", "gemini", "bedrock", "deepseek", "mistral", "xai", "grok", "openrouter")
# Layers that may mention vendors by name (adapters, catalog) or that hold examples.
VENDOR_OK = ("providers", "catalog", "cli")
DIALECTS = ("anthropic", "gemini")
# A served dialect is named after the API it speaks; only its own modules may say that name.
DIALECT_OK = {
    "anthropic": ("protocols/anthropic/", "server/anthropic_routes.py"),
    "gemini": ("protocols/gemini/", "server/gemini_routes.py"),
}


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


# Each source file is read and parsed once per test process, not once per rule: parsing all of
# src/ takes about 0.7 s, and nine rules read every module. The trees are only read.
@functools.cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


@functools.cache
def _nodes(path: Path) -> tuple[ast.AST, ...]:
    """Every node of the module, in ``ast.walk`` order."""
    return tuple(ast.walk(_tree(path)))


def _imports(path: Path, full: bool = False) -> set[str]:
    """The modules a module imports; with ``full``, by full name (``from a.b import c`` is
    ``a.b.c``)."""
    names: set[str] = set()
    for node in _nodes(path):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if full:
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
            else:
                names.add(node.module)
    return names


def test_modules_are_small():
    too_big = [
        f"{p.relative_to(SRC)}: {n}"
        for p in _modules()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    assert not too_big


def test_functions_are_short():
    long_ones = []
    for path in _modules():
        for node in _nodes(path):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_ones.append(
                        f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({length})"
                    )
    assert not long_ones


def test_signatures_are_narrow():
    wide = []
    for path in _modules():
        for node in _nodes(path):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                args = node.args
                count = len(args.args) + len(args.kwonlyargs) + len(args.posonlyargs)
                if args.args and args.args[0].arg in ("self", "cls"):
                    count -= 1
                if count >= 8:
                    wide.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({count})")
    assert not wide


def test_vendor_names_stay_in_adapters_and_catalog():
    offenders = []
    for path in _modules():
        rel = path.relative_to(SRC)
        if rel.parts[0] in VENDOR_OK:
            continue
        text = path.read_text().lower()
        # Served dialects are named after the API they speak: their own modules and the
        # server that mounts them may say that name; nothing else may.
        offenders += [
            f"{rel}: {v}"
            for v in VENDORS
            if v in text and v not in str(rel) and not (v in DIALECTS and rel.parts[0] == "server")
        ]
    assert not offenders


# --- the allowed-imports matrix ------------------------------------------------------------
# Which packages each package may import, from DESIGN.md's layer picture:
#
#   portal · cli ─► server ─► services (pipeline) ─► agents · guardrails · observability · routing
#                                    · tenancy · metering · catalog · providers · store ─► core
#   protocols ─► core          providers ─► core (+ transport)          nothing imports server
#
# Evals (like the CLI and the portal) is a feature built on services. ``local`` is the worker
# process serving an OpenAI-compatible API, so it speaks ``protocols.openai``. The CLI reaches
# the server only to run it (``server.app``); everything else it does goes through services.
# Rows for packages that do not exist yet (metering, agents, guardrails, observability, portal)
# hold the place their package must take when it lands. Every package must have a row.
ALLOWED_IMPORTS: dict[str, frozenset[str]] = {
    "core": frozenset(),
    # The config validates provider options and strategy names against their registries.
    "config": frozenset({"core", "providers.registry", "routing.router"}),
    "catalog": frozenset({"core"}),
    "protocols": frozenset({"core"}),
    "providers": frozenset({"core"}),
    "local": frozenset({"core", "protocols"}),
    "routing": frozenset({"core"}),
    "tenancy": frozenset({"core"}),
    "metering": frozenset({"core", "catalog"}),  # cost from catalog prices
    "store": frozenset({"core", "tenancy.model"}),  # rows mapped to the plain domain records
    "agents": frozenset({"core"}),
    "guardrails": frozenset({"core"}),
    "observability": frozenset({"core"}),
    "services": frozenset(
        {
            "core",
            "config",
            "catalog",
            "providers",
            "local",
            "routing",
            "tenancy",
            "metering",
            "store",
            "agents",
            "guardrails",
            "observability",
        }
    ),
    "evals": frozenset({"core", "config", "catalog", "services"}),
    # server.app mounts the portal; the portal never imports server (no cycle).
    "server": frozenset({"core", "config", "protocols", "services", "portal"}),
    # What the admin routes reach, without server itself: the service layer and the records
    # its pages show (catalog facts, routing targets, deployment versions, keys).
    "portal": frozenset(
        {"core", "config", "services", "catalog", "routing", "store", "tenancy", "evals"}
    ),
    "cli": frozenset({"core", "config", "services", "local", "evals", "server.app"}),
}

# Imports that break the matrix today, each named by (importing module, what it imports) with
# where the import belongs. They are debts: an entry that matches no import any more fails the
# test, so none outlives its leak, and a new leak needs a new line here, in review.
IMPORT_EXCEPTIONS: dict[tuple[str, str], str] = {
    ("server/app.py", "store"): "unassigned: opening the store belongs to services.root",
    (
        "server/admin_http.py",
        "store",
    ): "unassigned: StoreError should become a core error in services",
    ("server/admin_http.py", "tenancy"): "unassigned: Principal should come from services",
    ("server/admin_evals.py", "evals"): "unassigned: eval runs' storage is a services use case",
    ("server/admin_routes.py", "tenancy"): "unassigned: Principal should come from services",
    ("server/chat_route.py", "tenancy"): "unassigned: key resolution should be a pipeline stage",
    ("cli/serve.py", "store"): "unassigned: opening the store belongs to the composition root",
    ("cli/deployments.py", "store"): "unassigned: deployment versions through services",
    ("cli/eval.py", "store"): "unassigned: eval runs' storage through services",
    ("cli/tenancy.py", "store"): "unassigned: tenancy use cases through services",
    ("cli/tenancy.py", "tenancy"): "unassigned: Principal should come from services",
    ("cli/chat.py", "tenancy"): "unassigned: the in-process chat's Principal from services",
    ("cli/chat.py", "providers"): "unassigned: the CLI's HTTP client reuses the SSE decoder",
    ("cli/models.py", "catalog"): "unassigned: price display through services.models",
    ("evals/store_recorder.py", "store"): "unassigned: eval runs' storage is a services use case",
    ("evals/store_recorder.py", "tenancy"): "unassigned: Principal should come from services",
}


def _package_imports() -> dict[tuple[str, str], set[str]]:
    """(module under src/modelyard, imported package) -> the modules it imports from there, for
    every import of another package of ours (also those under TYPE_CHECKING or in functions)."""
    found: dict[tuple[str, str], set[str]] = {}
    for path in _modules():
        rel = path.relative_to(SRC)
        if len(rel.parts) == 1:  # modelyard/__init__.py: the version, nothing else
            continue
        for name in _imports(path, full=True):
            parts = name.split(".")
            if parts[0] != "modelyard" or len(parts) < 2 or parts[1] == rel.parts[0]:
                continue
            if not (SRC / parts[1]).is_dir():  # the version, from modelyard/__init__.py
                continue
            found.setdefault((str(rel), parts[1]), set()).add(name)
    return found


def _allowed(package: str, name: str) -> bool:
    """Whether ``package`` may import ``name`` (``modelyard.x.y``) by the matrix."""
    target = name.removeprefix("modelyard.")
    return any(
        target == entry or target.startswith(entry + ".") for entry in ALLOWED_IMPORTS[package]
    )


def test_every_package_has_a_row_in_the_import_matrix():
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").exists()}
    assert packages - ALLOWED_IMPORTS.keys() == set()
    targets = {entry.split(".")[0] for row in ALLOWED_IMPORTS.values() for entry in row}
    assert targets <= ALLOWED_IMPORTS.keys()


def test_packages_import_only_what_the_matrix_allows():
    leaks = sorted(
        f"{module} imports {sorted(names)}"
        for (module, package), names in _package_imports().items()
        if (module, package) not in IMPORT_EXCEPTIONS
        and not all(_allowed(module.split("/")[0], name) for name in names)
    )
    assert not leaks


def test_every_import_exception_is_still_a_leak():
    imports = _package_imports()
    stale = [
        f"{module} -> {package}: {why}"
        for (module, package), why in IMPORT_EXCEPTIONS.items()
        if (names := imports.get((module, package))) is None
        or all(_allowed(module.split("/")[0], name) for name in names)
    ]
    assert not stale, "delete these exceptions: the import is gone"


def test_sibling_dialects_and_vendors_do_not_import_each_other():
    """``protocols/<dialect>`` never re-parses another dialect; ``providers/<vendor>`` shares
    code only through the modules at the top of ``providers/``."""
    crossings = []
    for layer in ("protocols", "providers"):
        for path in (SRC / layer).rglob("*.py"):
            rel = path.relative_to(SRC)
            if len(rel.parts) < 3:
                continue
            for name in _imports(path):
                parts = name.split(".")
                if (
                    parts[:2] == ["modelyard", layer]
                    and len(parts) > 3
                    and parts[2] != rel.parts[1]
                    and (SRC / layer / parts[2]).is_dir()
                ):
                    crossings.append(f"{rel} imports {name}")
    assert not crossings


# --- no module-level mutable state ---------------------------------------------------------
# A module-level dict, list or set is state shared by every app in the process (DESIGN: no
# global mutable state; everything hangs off ``create_app``). A module-level table may stay when
# it cannot change: a tuple, a frozenset, a MappingProxyType, or a name annotated
# ``Final[<read-only type>]`` (``Final[Mapping[str, int]]``), whose mutation mypy refuses
# anywhere in the code base.
_MUTABLE_CALLS = frozenset(
    {
        "dict",
        "list",
        "set",
        "bytearray",
        "defaultdict",
        "OrderedDict",
        "Counter",
        "ChainMap",
        "deque",
        "WeakKeyDictionary",
        "WeakValueDictionary",
        "WeakSet",
    }
)
_READ_ONLY_TYPES = frozenset(
    {"Mapping", "Sequence", "AbstractSet", "Collection", "tuple", "frozenset", "MappingProxyType"}
)
_MUTATORS = frozenset(
    {
        "append",
        "appendleft",
        "extend",
        "extendleft",
        "insert",
        "pop",
        "popleft",
        "popitem",
        "remove",
        "clear",
        "update",
        "setdefault",
        "add",
        "discard",
        "sort",
        "reverse",
        "difference_update",
        "intersection_update",
        "symmetric_difference_update",
        "__setitem__",
        "__delitem__",
    }
)
_TABLE = "a lookup table, never mutated"
# Module-level containers in modules other branches are rewriting now: read-only by inspection
# (the test below checks that nothing in their module mutates them). Each should become
# ``Final[Mapping[...]]`` (or a tuple) when its module is next edited; the lead deletes the entry
# then, and an entry that no longer names a mutable container fails the test.
MUTABLE_ALLOWED: dict[str, str] = {
    "catalog/models.py:_ORG_VENDORS": _TABLE,
    "catalog/models.py:_HOST_VENDORS": _TABLE,
    "evals/graders.py:BUILTIN_GRADERS": _TABLE,
    "evals/judge.py:PROMPTS": _TABLE,
    "evals/judge.py:_WIN_SCORE": _TABLE,
    "protocols/anthropic/errors.py:_TYPES": _TABLE,
    "protocols/openai/errors.py:_TYPES": _TABLE,
    "protocols/validate.py:_TYPE_NAMES": _TABLE,
    "providers/anthropic/codec.py:EFFORT_BUDGETS": _TABLE,
    "providers/anthropic/errors.py:ERROR_STATUS": _TABLE,
    "providers/bedrock/codec.py:_OPEN_OBJECT": "a JSON schema sent as is, never mutated",
    "providers/bedrock/messages.py:IMAGE_FORMATS": _TABLE,
    "providers/bedrock/params.py:EFFORTS": _TABLE,
    "providers/bedrock/response.py:_STOP_REASONS": _TABLE,
    "providers/gemini/codec.py:_MODES": _TABLE,
    "providers/gemini/codec.py:_LEVELS": _TABLE,
    "providers/gemini/codec.py:_BUDGETS": _TABLE,
    "providers/gemini/codec.py:_EXTRAS": "a dispatch table, never mutated",
    "providers/openai_compatible/codec.py:_FINISH": _TABLE,
    "providers/openai_compatible/presets.py:_LIST": "the presets' source, read once",
    "providers/openai_compatible/presets.py:PRESETS": _TABLE,
    "providers/openai_only.py:REFUSED_UNLESS_DEFAULT": _TABLE,
    "server/admin_evals.py:ROUTES": "Starlette's route list, read when the app is built",
    "server/admin_routes.py:ROUTES": "Starlette's route list, read when the app is built",
    "server/anthropic_routes.py:ROUTES": "Starlette's route list, read when the app is built",
    "server/chat_route.py:SSE_HEADERS": "response headers, copied into each response",
    "server/gemini_routes.py:ROUTES": "Starlette's route list, read when the app is built",
    "server/openai_routes.py:ROUTES": "Starlette's route list, read when the app is built",
    "store/base.py:NAMING": "SQLAlchemy's naming convention, read when the metadata is built",
    "store/usage.py:_COLUMNS": _TABLE,
    "services/admin_models.py:_TIME": "pydantic's json_schema_extra takes a dict; never mutated",
}


def _is_mutable(value: ast.expr) -> bool:
    """Whether an expression makes a new mutable container."""
    if isinstance(value, ast.Dict | ast.List | ast.Set | ast.DictComp | ast.ListComp | ast.SetComp):
        return True
    if isinstance(value, ast.BinOp):  # {**a} | b, [x] * n, ...
        return _is_mutable(value.left) or _is_mutable(value.right)
    if isinstance(value, ast.Call):
        func = value.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        return name in _MUTABLE_CALLS
    return False


def _is_read_only(annotation: ast.expr | None) -> bool:
    """Whether an annotation is ``Final[T]`` with a read-only ``T``."""
    if not (isinstance(annotation, ast.Subscript) and _head(annotation.value) == "Final"):
        return False
    inner = annotation.slice
    return _head(inner.value if isinstance(inner, ast.Subscript) else inner) in _READ_ONLY_TYPES


def _head(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a quoted annotation
        return node.value.split("[")[0].split(".")[-1]
    return ""


def _module_statements(tree: ast.Module) -> list[ast.stmt]:
    """Statements run at import: the module's body and what ``if``/``try``/``with`` hold."""
    found: list[ast.stmt] = []
    todo: list[ast.stmt] = list(tree.body)
    while todo:
        node = todo.pop()
        found.append(node)
        if isinstance(node, ast.If | ast.Try | ast.With):
            for field in ("body", "orelse", "finalbody", "handlers"):
                todo.extend(getattr(node, field, []))
        elif isinstance(node, ast.ExceptHandler):
            todo.extend(node.body)
    return found


def _mutable_globals(path: Path) -> dict[str, int]:
    """Module-level names bound to new mutable containers without a read-only ``Final`` type,
    with their line (``__all__`` is the import machinery's, and left alone)."""
    names: dict[str, int] = {}
    for node in _module_statements(_tree(path)):
        if isinstance(node, ast.Assign) and _is_mutable(node.value):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            if not _is_mutable(node.value) or _is_read_only(node.annotation):
                continue
            targets = [node.target]
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and target.id != "__all__":
                names[target.id] = node.lineno
    return names


def _mutated_names(path: Path) -> set[str]:
    """Names a module mutates in place: ``x[k] = v``, ``del x[k]``, ``x += y``, ``x.clear()``,
    or rebinds from a function (``global x``)."""
    mutated: set[str] = set()
    for node in _nodes(path):
        if isinstance(node, ast.Global):
            mutated.update(node.names)
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete):
            targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
            for target in targets:
                if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                    mutated.add(target.value.id)
                elif isinstance(node, ast.AugAssign) and isinstance(target, ast.Name):
                    mutated.add(target.id)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _MUTATORS
            and isinstance(node.func.value, ast.Name)
        ):
            mutated.add(node.func.value.id)
    return mutated


def test_no_module_level_mutable_containers():
    found = [
        f"{path.relative_to(SRC)}:{line} {name}"
        for path in _modules()
        for name, line in _mutable_globals(path).items()
        if f"{path.relative_to(SRC)}:{name}" not in MUTABLE_ALLOWED
    ]
    assert not found, "make it a tuple/frozenset/MappingProxyType or Final[<read-only type>]"


def test_allowed_module_level_containers_are_never_mutated():
    checked = {}
    for path in _modules():
        rel = path.relative_to(SRC)
        names = _mutable_globals(path).keys()
        mutated = _mutated_names(path)
        checked.update({f"{rel}:{name}": name in mutated for name in names})
    assert not [entry for entry in MUTABLE_ALLOWED if checked.get(entry, True)]


def test_no_module_rebinds_a_global():
    assert not [
        f"{path.relative_to(SRC)}: global {', '.join(node.names)}"
        for path in _modules()
        for node in _nodes(path)
        if isinstance(node, ast.Global)
    ]


# Public class names defined twice, each named: (name, the modules defining it) -> why.
_WIRE = "the admin API's wire model of this type: its class name is the OpenAPI schema's name"
DUPLICATE_CLASS_EXCEPTIONS: dict[str, str] = {
    **dict.fromkeys(
        (
            "ApiKey",
            "Deployment",
            "Limits",
            "Principal",
            "Project",
            "Shadow",
            "Target",
            "UsageReport",
            "UsageRow",
        ),
        _WIRE,
    ),
    "EvalRun": "unassigned: server/admin_evals.py's wire model and store/evals.py's row",
    "Call": "unassigned: server/admin_http.py and services/metering.py each define one",
    "Caller": "unassigned: services/pipeline.py (who calls) and evals/runner.py (the eval client)",
}


def _sibling_root(rel: Path) -> str:
    """Sibling adapters and dialects (``providers/<vendor>/``, ``protocols/<dialect>/``) play
    the same part each, so each may name its own ``StreamState``: they count as one place."""
    if rel.parts[0] in ("providers", "protocols") and len(rel.parts) > 2:
        return rel.parts[0] + "/*"
    return str(rel)


def test_a_public_class_name_is_defined_once():
    """Two classes of one name (a second ``Usage``, ``TextDelta``) are two dialects of a type."""
    places: dict[str, set[str]] = {}
    for path in _modules():
        rel = path.relative_to(SRC)
        for node in _nodes(path):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                places.setdefault(node.name, set()).add(_sibling_root(rel))
    twice = {name for name, where in places.items() if len(where) > 1}
    assert twice - DUPLICATE_CLASS_EXCEPTIONS.keys() == set()
    assert DUPLICATE_CLASS_EXCEPTIONS.keys() <= twice, "delete exceptions that no longer apply"
