"""The build hook publishes snippets/ modules, and nothing a symbolic link there points to."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _load_hook():
    spec = importlib.util.spec_from_file_location(
        "offline_assets_under_test", ROOT / "hooks" / "offline_assets.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_hook_does_not_follow_symlinks_in_snippets(tmp_path, monkeypatch, caplog):
    hook = _load_hook()
    secret = tmp_path / "home" / "secret.py"
    secret.parent.mkdir()
    secret.write_text("TOKEN = 'do not publish'\n")
    (tmp_path / "home" / "leak.py").write_text("LEAK = 1\n")
    snippets = tmp_path / "snippets"
    (snippets / "pkg").mkdir(parents=True)
    (snippets / "real.py").write_text("x = 1\n")
    (snippets / "pkg" / "inner.py").write_text("y = 2\n")
    (snippets / "linked.py").symlink_to(secret)
    (snippets / "pkg" / "home").symlink_to(secret.parent, target_is_directory=True)
    monkeypatch.setattr(hook, "SNIPPETS_DIR", snippets)
    site = tmp_path / "site"
    site.mkdir()
    with caplog.at_level("WARNING"):
        hook.on_post_build({"site_dir": str(site)})
    published = sorted(
        p.relative_to(site / "snippets").as_posix()
        for p in (site / "snippets").rglob("*")
        if p.is_file()
    )
    assert published == ["pkg/inner.py", "real.py"]
    assert "linked.py" in caplog.text  # a warning: a --strict build fails on it
    assert not any(p.is_symlink() for p in (site / "snippets").rglob("*"))
