"""Serving a learned router needs numpy only: in a fresh interpreter where scikit-learn and
scipy cannot be imported (a serving-only install, without the ``router`` extra), a gateway
reads the artifact and routes; training says which extra to install."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from modelyard.routing import features as F
from modelyard.routing.model import dumps
from modelyard.routing.training import Example, fit

_CHILD = textwrap.dedent(
    """
    import json, sys
    for name in ("sklearn", "scipy"):
        sys.modules[name] = None  # any import of them raises ImportError
    from modelyard.config.loader import settings_from_data
    from modelyard.core.chat import ChatRequest, Message, TextPart
    from modelyard.core.errors import ModelyardError
    from modelyard.services.gateway import Gateway
    from modelyard.services.routers import train

    up = {"type": "openai_compatible", "base_url": "http://127.0.0.1:9", "api_key": "k"}
    router = {"artifact": sys.argv[1], "strong": "up/big", "threshold": 0.5}
    targets = [{"provider": "up", "model": "big"}, {"provider": "up", "model": "small"}]
    auto = {"strategy": "learned", "router": router, "targets": targets}
    data = {"local": {"enabled": False}, "providers": {"up": up}, "deployments": {"auto": auto}}
    learned = Gateway(settings_from_data(data), None).table.resolve("auto").learned
    ask = lambda t: ChatRequest("auto", [Message("user", (TextPart(t),))])
    scores = [learned.model.score(ask(t)) for t in ("the theorem proof", "the capital city")]
    try:
        train([("a", True), ("b", False)], {})
        refused = ""
    except ModelyardError as exc:
        refused = exc.message
    print(json.dumps({"scores": scores, "refused": refused,
                      "loaded": sorted(m for m in ("sklearn", "scipy") if sys.modules.get(m))}))
    """
)


def test_a_router_serves_without_scikit_learn(tmp_path: Path) -> None:
    examples = [
        Example(text, F.facts(text), hard)
        for i in range(100)
        for text, hard in ((f"the theorem proof {i}", True), (f"the capital city {i}", False))
    ]
    artifact = tmp_path / "r.router"
    artifact.write_bytes(dumps(fit(examples, {})))
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(artifact)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    got = json.loads(done.stdout)
    hard, easy = got["scores"]
    assert hard > 0.5 > easy
    assert "pip install 'modelyard[router]'" in got["refused"]
    assert got["loaded"] == []
