"""Static checks of Dockerfile and docker-compose.yaml (no Docker needed).

The container files are only exercised by hand, so these tests catch drift
between them and the rest of the repo: the Airflow pin in requirements.txt,
paths that are copied or bind-mounted, the services the stack needs, and
secrets that must come from the environment rather than the file.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
COMPOSE_FILE = REPO / "docker-compose.yaml"
REQUIREMENTS = REPO / "requirements.txt"

AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-init",
}
EXPECTED_SERVICES = AIRFLOW_SERVICES | {"postgres"}
SECRET_MARKERS = ("PASSWORD", "SECRET", "KEY", "TOKEN")
# A whole value that is one compose interpolation: ${VAR}, ${VAR:-default},
# ${VAR-default}, ${VAR:?err}, ${VAR?err}.
INTERPOLATION = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(?:(?::?[-?])[^}]*)?\}$")
# scheme://user:password@host...
URL_WITH_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^:/@]*:(?P<pw>.+)@[^@]+$")


# --------------------------------------------------------------------------
# helpers


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) pairs.

    Joins lines ending in a backslash and drops comment and blank lines,
    including ones inside a continuation (as Docker does).
    """
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        full = pending + line
        pending = ""
        keyword, _, args = full.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    if pending.strip():
        keyword, _, args = pending.strip().partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    return instructions


def _split_args(args: str) -> list[str]:
    """Tokens of an instruction in shell or JSON (exec) form."""
    if args.startswith("["):
        return json.loads(args)
    return shlex.split(args)


def parse_env(args: str) -> dict[str, str]:
    """Variables set by one ENV instruction (``k=v ...`` or legacy ``k v``)."""
    tokens = shlex.split(args)
    if "=" not in tokens[0]:
        return {tokens[0]: args.split(None, 1)[1] if len(tokens) > 1 else ""}
    return dict(token.split("=", 1) for token in tokens)


def _env_dict(env: dict | list | None) -> dict[str, str]:
    """Compose environment (mapping or list of KEY=VALUE) as a mapping."""
    if env is None:
        return {}
    if isinstance(env, dict):
        return {str(k): "" if v is None else str(v) for k, v in env.items()}
    return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)


def _inside_repo(path: str) -> Path:
    resolved = (REPO / path).resolve()
    assert resolved.is_relative_to(REPO), f"{path!r} points outside the repo"
    return resolved


@pytest.fixture(scope="module")
def airflow_pin() -> str:
    match = re.search(r"^apache-airflow==(\S+)\s*$", REQUIREMENTS.read_text(), re.MULTILINE)
    assert match, "requirements.txt has no apache-airflow==X pin"
    return match.group(1)


@pytest.fixture(scope="module")
def instructions() -> list[tuple[str, str]]:
    return parse_dockerfile(DOCKERFILE.read_text())


def dockerfile_stages(parsed: list[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    """Instructions per build stage, by stage name (FROM <image> AS <name>), in file order."""
    stages: dict[str, list[tuple[str, str]]] = {}
    for kw, args in parsed:
        if kw == "FROM":
            tokens = args.split()
            name = tokens[2] if len(tokens) == 3 and tokens[1].upper() == "AS" else f"stage{len(stages)}"
            stages[name] = []
        stages[list(stages)[-1]].append((kw, args))
    return stages


@pytest.fixture(scope="module")
def stages(instructions) -> dict[str, list[tuple[str, str]]]:
    return dockerfile_stages(instructions)


@pytest.fixture(scope="module")
def compose() -> dict:
    # safe_load resolves anchors and `<<` merge keys, so each service below
    # already carries the x-airflow-common settings.
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict[str, dict]:
    return compose["services"]


@pytest.fixture(scope="module")
def airflow_common(compose: dict) -> dict:
    return compose["x-airflow-common"]


@pytest.fixture(scope="module")
def common_services(services: dict, airflow_common: dict) -> dict[str, dict]:
    """Services built from the x-airflow-common anchor (same image)."""
    return {
        name: svc
        for name, svc in services.items()
        if svc.get("image") == airflow_common["image"] and "entrypoint" not in svc
    }


# --------------------------------------------------------------------------
# Dockerfile


def test_dockerfile_parser_joins_continuations_and_skips_comments():
    text = (
        "# header\n"
        "FROM base:1\n"
        "RUN pip install \\\n"
        "    # a comment inside the continuation\n"
        "    -r a.txt \\\n"
        "    -c b.txt\n"
        "env A=1 B='two words'\n"
    )
    parsed = parse_dockerfile(text)
    assert parsed == [
        ("FROM", "base:1"),
        ("RUN", "pip install -r a.txt -c b.txt"),
        ("ENV", "A=1 B='two words'"),
    ]
    assert parse_env(parsed[2][1]) == {"A": "1", "B": "two words"}


def test_dockerfile_from_matches_airflow_pin(stages, airflow_pin):
    assert list(stages) == ["gcs-emulator", "runtime"], "runtime must be the last (default) stage"
    for name, stage in stages.items():
        image, _, tag = stage[0][1].split()[0].partition(":")
        assert image == "apache/airflow", name
        match = re.fullmatch(r"(?P<airflow>[\w.]+)-python(?P<python>\d+\.\d+)", tag)
        assert match, f"unexpected base tag {tag!r}"
        assert match["airflow"] == airflow_pin, (
            f"Dockerfile base is Airflow {match['airflow']} but requirements.txt pins apache-airflow=={airflow_pin}"
        )
        # constraints.txt is compiled for 3.11.
        assert match["python"] == "3.11"


def test_dockerfile_copy_sources_exist(instructions):
    missing = []
    sources = []
    for kw, args in instructions:
        if kw not in ("COPY", "ADD"):
            continue
        tokens = _split_args(args)
        if any(t.startswith("--from") for t in tokens):
            continue  # copies from another stage, not the build context
        paths = [t for t in tokens if not t.startswith("--")]
        assert len(paths) >= 2, f"{kw} {args!r} needs a source and a destination"
        for src in paths[:-1]:
            sources.append(src)
            if not _inside_repo(src).exists():
                missing.append(src)
    assert sources, "Dockerfile copies nothing from the repo"
    assert not missing, f"COPY sources missing from the repo: {missing}"


def test_dockerfile_copies_project_into_airflow_home(instructions):
    copied: dict[str, str] = {}
    for kw, args in instructions:
        if kw == "COPY":
            paths = [t for t in _split_args(args) if not t.startswith("--")]
            for src in paths[:-1]:
                copied[src.rstrip("/")] = paths[-1].rstrip("/")
    assert copied.get("dags") == "/opt/airflow/dags"
    assert copied.get("plugins") == "/opt/airflow/plugins"
    assert copied.get("include") == "/opt/airflow/include"
    assert copied.get("pyproject.toml") == "/opt/airflow"
    assert {"requirements.txt", "constraints.txt"} <= copied.keys()


def _pip_runs(stage: list[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    user, runs = "root", []
    for kw, args in stage:
        if kw == "USER":
            user = args.split(":")[0]
        elif kw == "RUN" and "pip install" in args:
            runs.append((user, shlex.split(args)))
    return runs


def test_dockerfile_installs_pinned_requirements_as_airflow_user(stages):
    for name, stage in stages.items():
        pip_runs = _pip_runs(stage)
        assert pip_runs, f"stage {name} never runs pip install"
        for run_user, tokens in pip_runs:
            assert run_user == "airflow", "pip must run as the airflow user"
            assert "--no-cache-dir" in tokens
            pairs = set(zip(tokens[:-1], [Path(t).name for t in tokens[1:]], strict=True))
            assert ("-c", "constraints.txt") in pairs, tokens  # every package at its locked version
    runtime = [tokens for _, tokens in _pip_runs(stages["runtime"])]
    assert any(
        ("-r", "requirements.txt") in set(zip(t[:-1], [Path(x).name for x in t[1:]], strict=True)) for t in runtime
    )


def test_production_image_ships_no_test_tools_or_emulator(stages):
    """The runtime stage installs requirements.txt, which holds none of the test extra's packages."""
    import tomllib

    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    tools = {re.split(r"[=<>\[ ]", requirement)[0] for requirement in extra}
    assert {"pytest", "ruff", "gcp-storage-emulator"} <= tools
    pinned = {
        re.split(r"[=<>\[ ]", line)[0]
        for line in REQUIREMENTS.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert not tools & pinned, f"runtime requirements include test tools: {sorted(tools & pinned)}"
    runtime_text = " ".join(args for _, args in stages["runtime"])
    assert not any(tool in runtime_text for tool in tools)


def test_dockerfile_env(instructions):
    env: dict[str, str] = {}
    for kw, args in instructions:
        if kw == "ENV":
            env.update(parse_env(args))
    assert env.get("PYTHONPATH") == "/opt/airflow/plugins"
    assert env.get("SEGMENTATION_SQL_DIR") == "/opt/airflow/include/sql"
    assert env.get("SEGMENTATION_HOME") == "/opt/airflow/segmentation"


# --------------------------------------------------------------------------
# docker-compose.yaml


def test_compose_has_required_services(services):
    missing = EXPECTED_SERVICES - services.keys()
    assert not missing, f"compose is missing services: {sorted(missing)}"
    assert services["airflow-apiserver"]["command"] == "api-server"
    assert services["airflow-scheduler"]["command"] == "scheduler"
    assert services["airflow-dag-processor"]["command"] == "dag-processor"
    assert services["airflow-triggerer"]["command"] == "triggerer"


def test_compose_build_context_and_dockerfile_exist(services):
    built = {name: svc["build"] for name, svc in services.items() if "build" in svc}
    assert built, "no service builds the project image"
    for name, build in built.items():
        if isinstance(build, str):
            build = {"context": build}
        context = _inside_repo(build.get("context", "."))
        assert context.is_dir(), f"{name}: build context {context} missing"
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
        if "target" in build:
            assert build["target"] in dockerfile_stages(parse_dockerfile(dockerfile.read_text())), name


def test_compose_bind_mount_sources_exist(services):
    sources = []
    for svc in services.values():
        for volume in svc.get("volumes", []):
            if isinstance(volume, dict):
                if volume.get("type") != "bind":
                    continue
                source = volume["source"]
            else:
                source = volume.split(":", 1)[0]
                if not source.startswith((".", "/", "~")):
                    continue  # named volume
            sources.append(source)
    assert sources, "no bind mounts found"
    missing = sorted({s for s in sources if not _inside_repo(s).exists()})
    assert not missing, f"bind-mount sources missing from the repo: {missing}"


def test_compose_named_volumes_declared(compose, services):
    declared = set(compose.get("volumes") or {})
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            if isinstance(volume, str) and not volume.startswith((".", "/", "~")):
                named = volume.split(":", 1)[0]
                assert named in declared, f"{name}: volume {named!r} not declared"
    assert "segmentation-data" in declared


def test_common_anchor_used_by_all_airflow_services(common_services):
    assert set(common_services) == AIRFLOW_SERVICES


def test_common_services_have_executor_db_and_data_volume(common_services):
    for name, svc in common_services.items():
        env = _env_dict(svc.get("environment"))
        assert env.get("AIRFLOW__CORE__EXECUTOR") == "LocalExecutor", name
        conn = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
        assert conn.startswith("postgresql+psycopg2://"), (name, conn)
        assert re.search(r"@postgres(:\d+)?/airflow$", conn), (name, conn)
        assert env.get("AIRFLOW__CORE__LOAD_EXAMPLES") == "false", name
        assert env.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL") == ("http://airflow-apiserver:8080/execution/"), name
        home = env.get("SEGMENTATION_HOME")
        assert home == "/opt/airflow/segmentation", name
        assert f"segmentation-data:{home}" in svc.get("volumes", []), name


def test_compose_image_tag_matches_airflow_pin(common_services, airflow_pin):
    for name, svc in common_services.items():
        _, _, tag = svc["image"].rpartition(":")
        assert tag == airflow_pin, f"{name}: image tag {tag!r} != apache-airflow=={airflow_pin}"


def test_compose_dependencies_and_healthchecks(services):
    postgres = services["postgres"]
    assert postgres["image"].split(":")[0] == "postgres"
    assert "pg_isready" in json.dumps(postgres["healthcheck"]["test"])
    api_check = json.dumps(services["airflow-apiserver"]["healthcheck"]["test"])
    assert "http://localhost:8080/api/v2/version" in api_check
    assert "8080:8080" in services["airflow-apiserver"]["ports"]

    init_deps = services["airflow-init"]["depends_on"]
    assert init_deps["postgres"]["condition"] == "service_healthy"
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["airflow-init"]["condition"] == "service_completed_successfully", name


def test_compose_init_migrates_and_creates_warehouse_pool(services):
    command = services["airflow-init"]["command"]
    script = command if isinstance(command, str) else " ".join(command)
    assert "airflow db migrate" in script
    assert re.search(r"airflow pools set warehouse 1\b", script), script


def test_compose_has_no_hard_coded_secrets(compose):
    # Check every environment block, including the x-* anchors.
    blocks = {f"x:{k}": v for k, v in compose.items() if k.startswith("x-")}
    blocks.update(compose["services"])
    checked = []
    offenders = []
    for name, block in blocks.items():
        for key, value in _env_dict(block.get("environment")).items():
            if any(marker in key.upper() for marker in SECRET_MARKERS):
                checked.append(key)
                if not INTERPOLATION.match(value):
                    offenders.append(f"{name}: {key}={value!r}")
            url = URL_WITH_PASSWORD.match(value)
            if url and not INTERPOLATION.match(url["pw"]):
                offenders.append(f"{name}: {key} has a literal password in a URL")
    assert "POSTGRES_PASSWORD" in checked
    assert "AIRFLOW__API_AUTH__JWT_SECRET" in checked
    assert not offenders, "secrets must use ${VAR:-default}: " + "; ".join(offenders)


# --------------------------------------------------------------------------
# The pipeline's stack: GCS emulator as lake, PostgreSQL as warehouse


def test_lake_is_the_gcs_emulator_service(services, airflow_common):
    emulator = services["gcs-emulator"]
    assert emulator["entrypoint"] == ["gcp-storage-emulator"]
    assert emulator["build"]["target"] == "gcs-emulator"  # its own stage: the production image has no emulator
    assert airflow_common["build"]["target"] == "runtime"
    port = emulator["command"][emulator["command"].index("--port") + 1]
    env = _env_dict(airflow_common["environment"])
    assert env["STORAGE_EMULATOR_HOST"] == f"http://gcs-emulator:{port}"
    assert env["SEGMENTATION_LAKE_ROOT"].startswith("gs://segmentation-lake/")
    assert "gcp-storage-emulator" in " ".join(
        args for _, args in dockerfile_stages(parse_dockerfile(DOCKERFILE.read_text()))["gcs-emulator"]
    )
    assert port in json.dumps(emulator["healthcheck"]["test"])


def test_warehouse_is_postgres_with_a_connection_made_by_init(services, airflow_common):
    warehouse = services["warehouse-db"]
    assert warehouse["image"].split(":")[0] == "postgres"
    assert "pg_isready" in json.dumps(warehouse["healthcheck"]["test"])
    env = _env_dict(airflow_common["environment"])
    assert env["SEGMENTATION_WAREHOUSE_BACKEND"] == "postgres"
    script = " ".join(services["airflow-init"]["command"])
    assert f"airflow connections add {env['SEGMENTATION_WAREHOUSE_CONN_ID']}" in script
    assert "--conn-host warehouse-db" in script
    assert "scripts/create_bucket.py segmentation-lake" in script
    assert (REPO / "scripts" / "create_bucket.py").is_file()
    for name in ("warehouse-db", "gcs-emulator"):
        assert services["airflow-scheduler"]["depends_on"][name]["condition"] == "service_healthy"


def test_every_segmentation_variable_is_a_known_setting(airflow_common, monkeypatch, tmp_path):
    """Each SEGMENTATION_* value the stack sets is what the code's Settings then hold."""
    from dataclasses import asdict

    from segmentation.config import load_settings

    compose_env = {
        k: str(v) for k, v in _env_dict(airflow_common["environment"]).items() if k.startswith("SEGMENTATION_")
    }
    assert compose_env
    # the image's SQL folder, mirrored here so that the settings' check that it exists passes
    compose_env["SEGMENTATION_SQL_DIR"] = str(tmp_path) + compose_env["SEGMENTATION_SQL_DIR"]
    Path(compose_env["SEGMENTATION_SQL_DIR"]).mkdir(parents=True)
    for key, value in compose_env.items():
        monkeypatch.setenv(key, value)
    held = {str(v) for v in asdict(load_settings()).values()}
    for key, value in compose_env.items():
        assert value in held, f"{key}={value} is set by docker-compose.yaml but no setting holds it"
