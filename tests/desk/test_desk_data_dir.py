"""The desk's data folder holds personal data (the SQLite database) and the audit key: only the account
that runs the desk may enter it, whoever made the folder."""

from __future__ import annotations

import stat

from securecomm.desk.db import SQLITE_FILE_NAME


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_makes_a_private_data_folder(tmp_path, desk_init):
    data_dir = tmp_path / "jail"
    made = desk_init(data_dir)
    assert made.exit_code == 0, made.output
    assert _mode(data_dir) == 0o700
    assert (data_dir / SQLITE_FILE_NAME).exists() and _mode(data_dir / "audit.key") == 0o600


def test_init_closes_a_data_folder_others_can_read_and_says_so(tmp_path, desk_init):
    data_dir = tmp_path / "jail"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)  # whatever the umask
    made = desk_init(data_dir)
    assert made.exit_code == 0, made.output
    assert _mode(data_dir) == 0o700
    assert "0755" in made.output and "0700" in made.output
