from __future__ import annotations

import re
from pathlib import Path

import yaml
from typer.testing import CliRunner

from relaygate.cli import app


def test_keys_create_list_revoke_usage_providers(tmp_path: Path) -> None:
    cfg = tmp_path / "relaygate.yaml"
    cfg.write_text(yaml.safe_dump({"storage": {"url": f"sqlite:///{tmp_path / 'c.db'}"}}))
    runner = CliRunner(env={"COLUMNS": "200"})
    made = runner.invoke(
        app,
        [
            "keys",
            "create",
            "--name",
            "ci",
            "--rpm",
            "5",
            "--budget",
            "2.5",
            "--models",
            "openai/*",
            "--config",
            str(cfg),
        ],
    )
    assert made.exit_code == 0, made.output
    secret = next(line for line in made.stdout.splitlines() if line.startswith("rg-"))
    listed = runner.invoke(app, ["keys", "list", "--config", str(cfg)])
    assert listed.exit_code == 0 and "ci" in listed.stdout and "$2.50" in listed.stdout
    assert secret not in listed.stdout
    key_id = re.search(r"created key (key_[0-9a-f]+)", made.output).group(1)  # type: ignore[union-attr]
    assert runner.invoke(app, ["keys", "revoke", key_id, "--config", str(cfg)]).exit_code == 0
    again = runner.invoke(app, ["keys", "revoke", key_id, "--config", str(cfg)])
    assert again.exit_code == 1
    assert "revoked" in runner.invoke(app, ["keys", "list", "--config", str(cfg)]).stdout
    usage = runner.invoke(app, ["usage", "--config", str(cfg), "--by", "backend"])
    assert usage.exit_code == 0 and "requests" in usage.stdout
    bad = runner.invoke(app, ["usage", "--config", str(cfg), "--by", "nonsense"])
    assert bad.exit_code == 1
    assert runner.invoke(app, ["providers", "--config", str(cfg)]).exit_code == 0
