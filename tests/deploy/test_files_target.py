"""The files target and the atomic folder writing under it: modes, owners, exact undo, failures that change nothing,
and the reload command (no server: the files on disk are the proof)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from certsmith.deploy.targets import DeployError, DeployTarget, Material, build_target
from certsmith.deploy.targets.atomic import FileSpec, resolve_owner, write_files
from certsmith.deploy.targets.base import group_activations, same_serial
from certsmith.domain.errors import ValidationError

from .conformance import TargetConformance, make_materials

ROOT = os.geteuid() == 0
NAMES = ("cert.pem", "chain.pem", "fullchain.pem", "privkey.pem")


@pytest.fixture(scope="module")
def materials() -> list[Material]:
    return make_materials()


def files_target(path: Path, **options: Any) -> DeployTarget:
    return build_target("files", {"path": str(path), **options})


def snapshot(folder: Path) -> dict[str, tuple[bytes, int, int, int]]:
    """Every entry of ``folder``: content, mode, uid, gid."""
    found = {}
    for entry in sorted(folder.iterdir()):
        info = entry.lstat()
        found[entry.name] = (entry.read_bytes(), stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid)
    return found


def key_body(material: Material) -> str:
    return "".join(line for line in material.private_key_pem.splitlines() if not line.startswith("-----"))


class TestFilesConformance(TargetConformance):
    @pytest.fixture
    def materials(self, materials: list[Material]) -> list[Material]:
        """The module's versions (the suite's own class-scoped fixture is an instance method, which pytest refuses)."""
        return materials

    @pytest.fixture
    def make_target(self, tmp_path: Path) -> Callable[[Mapping[str, Any]], DeployTarget]:
        return lambda state: build_target("files", {"path": str(tmp_path), "reload_command": "true"}, state)

    @pytest.fixture
    def broken_target(self, tmp_path: Path) -> DeployTarget:
        return files_target(tmp_path, reload_command="echo reload refused >&2; exit 1")


def test_writes_certbots_four_files_with_the_key_private(tmp_path: Path, materials: list[Material]) -> None:
    files_target(tmp_path).install(materials[0])
    assert sorted(os.listdir(tmp_path)) == sorted(NAMES)
    modes = {name: stat.S_IMODE((tmp_path / name).stat().st_mode) for name in NAMES}
    assert modes == {"cert.pem": 0o644, "chain.pem": 0o644, "fullchain.pem": 0o644, "privkey.pem": 0o600}
    first = materials[0]
    assert (tmp_path / "cert.pem").read_text().strip() == first.certificate_pem.strip()
    assert (tmp_path / "chain.pem").read_text().strip() == first.chain_pem.strip()
    assert (tmp_path / "fullchain.pem").read_text() == first.fullchain_pem
    assert (tmp_path / "privkey.pem").read_text().strip() == first.private_key_pem.strip()


def test_key_mode_is_set_before_any_content_and_kept_under_a_wide_umask(tmp_path: Path, materials: list[Material]) -> None:
    old = os.umask(0)
    try:
        files_target(tmp_path, key_mode="640").install(materials[0])
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "privkey.pem").stat().st_mode) == 0o640
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")], "temporary files were left behind"


@pytest.mark.parametrize(("key_mode", "field"), [("644", "key_mode"), ("606", "key_mode"), ("rw", "key_mode"),
                                                 ("040", "key_mode")])
def test_unsafe_or_unreadable_key_modes_are_refused(tmp_path: Path, key_mode: str, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        files_target(tmp_path, key_mode=key_mode)
    assert caught.value.field == field and "key_mode" in str(caught.value)


def test_a_relative_path_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        build_target("files", {"path": "certs/www"})
    assert caught.value.field == "path"


def test_undo_restores_the_previous_files_exactly(tmp_path: Path, materials: list[Material]) -> None:
    (tmp_path / "cert.pem").write_text("an old certificate\n")
    (tmp_path / "privkey.pem").write_text("an old key\n")
    os.chmod(tmp_path / "privkey.pem", 0o640)
    (tmp_path / "other.txt").write_text("not ours\n")
    before = snapshot(tmp_path)
    installed = files_target(tmp_path).install(materials[1])
    assert same_serial(files_target(tmp_path).held().serial, materials[1].serial)
    installed.undo()
    assert snapshot(tmp_path) == before  # chain.pem and fullchain.pem did not exist: gone again


def test_undo_after_undo_changes_nothing(tmp_path: Path, materials: list[Material]) -> None:
    files_target(tmp_path).install(materials[0])
    installed = files_target(tmp_path).install(materials[1])
    installed.undo()
    installed.undo()
    assert same_serial(files_target(tmp_path).held().serial, materials[0].serial)


def test_a_missing_folder_is_unwritable_and_named(tmp_path: Path, materials: list[Material]) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DeployError) as caught:
        files_target(missing).install(materials[0])
    assert caught.value.reason == "unwritable" and str(missing) in str(caught.value)
    assert not missing.exists()
    with pytest.raises(DeployError):
        files_target(missing).check()


def test_a_failure_part_way_leaves_every_file_as_it_was(tmp_path: Path, materials: list[Material]) -> None:
    files_target(tmp_path).install(materials[0])
    os.unlink(tmp_path / "privkey.pem")
    (tmp_path / "privkey.pem").mkdir()  # cannot be replaced by a file
    before = {name: entry for name, entry in snapshot_files(tmp_path).items()}
    with pytest.raises(DeployError) as caught:
        files_target(tmp_path).install(materials[1])
    assert caught.value.reason == "unwritable" and "privkey.pem" in str(caught.value)
    assert snapshot_files(tmp_path) == before
    assert sorted(os.listdir(tmp_path)) == sorted(NAMES), "temporary files were left behind"


def snapshot_files(folder: Path) -> dict[str, bytes]:
    return {entry.name: entry.read_bytes() for entry in folder.iterdir() if entry.is_file()}


@pytest.mark.skipif(ROOT, reason="root may write into any folder")
def test_a_read_only_folder_is_unwritable_and_unchanged(tmp_path: Path, materials: list[Material]) -> None:
    files_target(tmp_path).install(materials[0])
    before = snapshot(tmp_path)
    os.chmod(tmp_path, 0o555)
    try:
        with pytest.raises(DeployError) as caught:
            files_target(tmp_path).install(materials[1])
    finally:
        os.chmod(tmp_path, 0o755)
    assert caught.value.reason == "unwritable" and str(tmp_path) in str(caught.value)
    assert snapshot(tmp_path) == before


def test_a_key_that_does_not_match_its_certificate_is_not_written(tmp_path: Path, materials: list[Material]) -> None:
    files_target(tmp_path).install(materials[0])
    before = snapshot(tmp_path)
    mixed = Material(materials[1].certificate_arn, 2, materials[1].serial, materials[1].certificate_pem,
                     materials[1].chain_pem, materials[2].private_key_pem)
    with pytest.raises(DeployError) as caught:
        files_target(tmp_path).install(mixed)
    assert caught.value.reason == "config" and "does not match" in str(caught.value)
    assert key_body(mixed)[:24] not in str(caught.value)
    assert snapshot(tmp_path) == before


def test_owner_and_group_by_name(tmp_path: Path, materials: list[Material]) -> None:
    import grp
    import pwd

    nobody = pwd.getpwnam("nobody")
    group = grp.getgrgid(nobody.pw_gid).gr_name
    target = files_target(tmp_path, owner="nobody", group=group)
    if not ROOT:
        with pytest.raises(DeployError) as caught:
            target.install(materials[0])
        assert caught.value.reason == "refused" and str(tmp_path) in str(caught.value)
        assert os.listdir(tmp_path) == []
        return
    target.install(materials[0])
    for name in NAMES:
        info = (tmp_path / name).stat()
        assert (info.st_uid, info.st_gid) == (nobody.pw_uid, nobody.pw_gid)


def test_an_unknown_owner_is_a_config_error_naming_it(tmp_path: Path, materials: list[Material]) -> None:
    target = files_target(tmp_path, owner="no-such-user-here")
    with pytest.raises(DeployError) as caught:
        target.install(materials[0])
    assert caught.value.reason == "config" and "no-such-user-here" in str(caught.value)
    assert os.listdir(tmp_path) == []
    with pytest.raises(DeployError):
        target.check()


@pytest.mark.parametrize("field", ["owner", "group"])
@pytest.mark.parametrize("value", ["\u0663", "\u0661\u0660\u0660\u0660", "99999999999999999999", "9" * 5000,
                                   "4294967295", "-1", "+5", "a:b", "tab\there"])
def test_an_owner_or_group_that_is_neither_a_name_nor_an_id_is_refused_naming_the_option(
        tmp_path: Path, field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=f"option '{field}'") as refused:
        files_target(tmp_path, **{field: value})
    assert refused.value.field == field and len(str(refused.value)) < 300
    owner, group = (value, None) if field == "owner" else (None, value)
    with pytest.raises(DeployError, match=f"option '{field}'") as caught:
        resolve_owner("files test", owner, group)
    assert caught.value.reason == "config"


def test_ids_are_ascii_decimal_up_to_the_largest(tmp_path: Path) -> None:
    assert resolve_owner("files test", "4294967294", "0") == (4294967294, 0)
    assert resolve_owner("files test", "007", None) == (7, -1)
    assert resolve_owner("files test", None, None) == (-1, -1)
    files_target(tmp_path, owner="4294967294", group="0").check()


def test_write_files_refuses_names_with_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_files("t", tmp_path, {"../escape.pem": FileSpec(b"x")})


def test_a_failing_reload_command_tells_its_status_and_output_without_the_key(
        tmp_path: Path, materials: list[Material]) -> None:
    command = "cat privkey.pem; echo the service refused to reload >&2; exit 3"
    target = files_target(tmp_path, reload_command=command, reload_cwd=str(tmp_path))
    target.install(materials[0])
    activation = target.activation()
    assert activation is not None
    with pytest.raises(DeployError) as caught:
        activation.run()
    message = str(caught.value)
    assert caught.value.reason == "reload"
    assert "exit status 3" in message and "the service refused to reload" in message
    assert message.startswith(f"files: the reload command {command!r} failed (exit status 3)")
    assert message.count(command) == 1  # named once
    assert "[private key removed]" in message and key_body(materials[0])[:24] not in message


def test_a_reload_command_runs_in_a_clean_environment(tmp_path: Path, materials: list[Material],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-for-commands")
    target = files_target(tmp_path, reload_command=f"env > {tmp_path}/env.txt")
    target.install(materials[0])
    activation = target.activation()
    assert activation is not None
    activation.run()
    seen = dict(line.split("=", 1) for line in (tmp_path / "env.txt").read_text().splitlines() if "=" in line)
    assert "AWS_SECRET_ACCESS_KEY" not in seen and seen["LC_ALL"] == "C" and seen["PATH"]


def test_a_reload_command_that_hangs_is_stopped_at_the_timeout(tmp_path: Path) -> None:
    target = files_target(tmp_path, reload_command="echo started; sleep 30", timeout="0.5")
    activation = target.activation()
    assert activation is not None
    with pytest.raises(DeployError) as caught:
        activation.run()
    assert caught.value.reason == "reload" and "did not finish within 0.5 s" in str(caught.value)


def test_no_reload_command_no_activation(tmp_path: Path) -> None:
    assert files_target(tmp_path).activation() is None


def test_folders_with_one_reload_command_share_one_activation(tmp_path: Path, materials: list[Material]) -> None:
    folders = [tmp_path / name for name in ("a", "b", "c")]
    for folder in folders:
        folder.mkdir()
    command = f"echo reloaded >> {tmp_path}/count.txt"
    targets = [files_target(folder, reload_command=command) for folder in folders]
    targets.append(files_target(tmp_path, reload_command="true"))
    groups = group_activations(targets)
    assert sorted(indexes for _, indexes in groups.values()) == [[0, 1, 2], [3]]
    for activation, _ in groups.values():
        activation.run()
    assert (tmp_path / "count.txt").read_text() == "reloaded\n"


def test_held_says_none_without_a_certificate_and_remove_deletes_only_ours(tmp_path: Path,
                                                                            materials: list[Material]) -> None:
    target = files_target(tmp_path)
    assert target.held().serial is None
    target.install(materials[0])
    (tmp_path / "other.txt").write_text("kept")
    target.remove()
    assert os.listdir(tmp_path) == ["other.txt"]
    (tmp_path / "cert.pem").write_text("not a certificate")
    assert target.held().serial is None and "no PEM certificate" in target.held().detail["problem"]


def test_undo_puts_back_a_symbolic_link_as_a_link(tmp_path: Path, materials: list[Material]) -> None:
    archive = tmp_path / "archive"
    live = tmp_path / "live"
    archive.mkdir()
    live.mkdir()
    (archive / "cert1.pem").write_text("the archived certificate\n")
    (live / "cert.pem").symlink_to("../archive/cert1.pem")
    installed = files_target(live).install(materials[0])
    assert not (live / "cert.pem").is_symlink()
    installed.undo()
    assert os.readlink(live / "cert.pem") == "../archive/cert1.pem"
    assert (archive / "cert1.pem").read_text() == "the archived certificate\n"
