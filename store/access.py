"""Who may read a store: one access policy for every file and directory bahfs writes.

A store holds features of participants' faces and voices, so its modes are set on
purpose, never left to the process umask:

* ``group`` (the default): files ``rw-rw----`` (0660), directories ``rwxrws---``
  (2770: the setgid bit makes new files and folders inherit the directory's group,
  so a lab's shared group carries down); nothing for others.
* ``owner``: files 0600, directories 0700; nothing for the group either.

Optionally a named ``group``: every path is given that group (the writer must be a
member of it). Without one, paths keep the group they get, which under setgid
directories is the store directory's group. The policy is recorded in
``STORE/access.json`` (``bahfs access``); a store without that file has the default.
Every writer in ``store/`` (tables, manifest, Zarr metadata and chunks, staging,
locks, plots, exports) and the run directories of ``training/`` go through this
module; ``bahfs verify`` reports paths that drift from it and ``--fix`` repairs them.
"""

from __future__ import annotations

import grp
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from store.errors import ConfigError, CorruptError

ACCESS_FILE = "access.json"
Scope = Literal["group", "owner"]
SCOPES: tuple[Scope, ...] = ("group", "owner")
_MODES: dict[str, tuple[int, int]] = {"group": (0o660, 0o2770), "owner": (0o600, 0o700)}


@dataclass(frozen=True)
class AccessPolicy:
    """``scope``: ``group`` or ``owner``; ``group``: a group name every path gets, or
    None (paths keep the group they are created with); ``gid``: that group's id."""

    scope: Scope = "group"
    group: str | None = None
    gid: int | None = None

    @property
    def file_mode(self) -> int:
        return _MODES[self.scope][0]

    @property
    def dir_mode(self) -> int:
        return _MODES[self.scope][1]

    def to_json(self) -> dict[str, str | None]:
        return {"scope": self.scope, "group": self.group}

    # -- applying -------------------------------------------------------------------
    def apply(self, path: Path | str, *, is_dir: bool | None = None) -> bool:
        """Give ``path`` (not followed when a link) the policy's mode and group; True
        when something changed. Links are left alone (their mode means nothing)."""
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            return False
        want = self.dir_mode if (stat.S_ISDIR(st.st_mode) if is_dir is None else is_dir) \
            else self.file_mode
        changed = False
        if self.gid is not None and st.st_gid != self.gid:
            os.chown(path, -1, self.gid)  # before chmod: chown may clear the setgid bit
            changed = True
        if changed or stat.S_IMODE(st.st_mode) != want:
            os.chmod(path, want)
            changed = True
        return changed

    def apply_tree(self, root: Path | str) -> int:
        """:meth:`apply` to ``root`` and everything under it; how many paths changed."""
        n = int(self.apply(root))
        for folder, dirs, files in os.walk(root):
            for name in dirs:
                n += self.apply(os.path.join(folder, name))
            for name in files:
                n += self.apply(os.path.join(folder, name), is_dir=False)
        return n

    def make_dirs(self, path: Path | str) -> Path:
        """Create ``path`` and its missing parents, each with the policy's mode (those
        that exist are left as they are); return it."""
        path = Path(path)
        missing = []
        p = path
        while not p.exists():
            missing.append(p)
            if p.parent == p:
                break
            p = p.parent
        for d in reversed(missing):
            try:
                os.mkdir(d, self.dir_mode)
            except FileExistsError:  # another process made it meanwhile: theirs to set
                continue
            self.apply(d, is_dir=True)
        return path

    def drift(self, path: Path | str, st: os.stat_result, group_of_store: int | None
              ) -> str | None:
        """How ``path`` (stat ``st``) differs from the policy, or None. In the ``group``
        scope without a named group, the group expected is ``group_of_store``."""
        if stat.S_ISLNK(st.st_mode):
            return None
        is_dir = stat.S_ISDIR(st.st_mode)
        want = self.dir_mode if is_dir else self.file_mode
        said = []
        if stat.S_IMODE(st.st_mode) != want:
            said.append(f"mode {stat.filemode(st.st_mode)} ({stat.S_IMODE(st.st_mode):04o}), "
                        f"expected {want:04o}")
        gid = self.gid if self.gid is not None else (
            group_of_store if self.scope == "group" else None)
        if gid is not None and st.st_gid != gid:
            said.append(f"group {_group_name(st.st_gid)}, expected {_group_name(gid)}")
        return "; ".join(said) or None


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def make_policy(scope: str = "group", group: str | None = None) -> AccessPolicy:
    """A policy from its settings, checked: a known scope, an existing group."""
    if scope not in SCOPES:
        raise ConfigError(f"access scope {scope!r}", expected=" or ".join(SCOPES))
    gid = None
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError as exc:
            raise ConfigError(f"group {group!r} does not exist on this machine",
                              expected="an existing group (getent group NAME)") from exc
    return AccessPolicy(scope, group or None, gid)


DEFAULT = AccessPolicy()


def load_policy(store: Path | str) -> AccessPolicy:
    """The policy recorded in ``STORE/access.json``; the default when there is none."""
    path = Path(store) / ACCESS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return DEFAULT
    except ValueError as exc:
        raise CorruptError(f"unreadable access policy: {exc}", path=path,
                           expected='{"scope": "group" | "owner", "group": NAME | null}'
                           ) from exc
    if not isinstance(data, dict) or set(data) - {"scope", "group"}:
        raise CorruptError("unexpected access policy", path=path,
                           expected='{"scope": "group" | "owner", "group": NAME | null}')
    return make_policy(str(data.get("scope", "group")), data.get("group"))


def save_policy(store: Path | str, policy: AccessPolicy
                ) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Record ``policy`` in the store (creating the store directory if needed) and
    apply it to every path already there, the store directory included: the paths
    changed, and those that could not be (:func:`fix_drift`)."""
    store = Path(store)
    policy.make_dirs(store)
    path = store / ACCESS_FILE
    tmp = path.with_name(f".{ACCESS_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(policy.to_json(), indent=2), encoding="utf-8")
    policy.apply(tmp, is_dir=False)
    os.replace(tmp, path)  # readers see the old policy or the new one
    fixed, failed = fix_drift(store)
    try:  # the store directory too, when chosen on purpose
        if policy.apply(store, is_dir=True):
            fixed.append(store)
    except OSError as exc:
        failed.append((store, exc.strerror or str(exc)))
    return fixed, failed


def new_dir(path: Path | str, access: AccessPolicy) -> Path:
    """Create the directory ``path``, which must not exist yet (a run directory), and its
    missing parents, with the modes of ``access``; return it."""
    path = Path(path)
    access.make_dirs(path.parent)
    path.mkdir()
    access.apply(path, is_dir=True)
    return path


def make_store_dir(store: Path | str) -> Path:
    """The store directory, created with the store's policy when missing."""
    return load_policy(store).make_dirs(store)


#: what bahfs writes at the top of a store (store/layout.py): the only paths the
#: policy is checked on and applied to; anything else a user put there is theirs
BAHFS_ENTRIES = ("tables", "features.zarr", ".staging", ".trash", ".locks", "plots",
                 "exports", ACCESS_FILE)


def _walk(store: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Every path bahfs wrote in ``store`` with its ``lstat``, one system call each
    (``os.scandir``; paths as strings: a store holds over 100k of them)."""
    for name in BAHFS_ENTRIES:
        top = os.path.join(store, name)
        try:
            st = os.lstat(top)
        except FileNotFoundError:
            continue
        yield top, st
        folders = [top] if stat.S_ISDIR(st.st_mode) else []
        while folders:
            try:
                entries = os.scandir(folders.pop())
            except FileNotFoundError:  # removed meanwhile (a writer's staging)
                continue
            with entries:
                for entry in entries:
                    try:
                        est = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    yield entry.path, est
                    if stat.S_ISDIR(est.st_mode):
                        folders.append(entry.path)


def _root_drift(st: os.stat_result) -> str | None:
    """The store directory may be the user's own (made before bahfs ran): only access
    for others is a drift there."""
    if stat.S_IMODE(st.st_mode) & 0o007:
        return (f"mode {stat.filemode(st.st_mode)}: others have access to the store "
                "directory")
    return None


def survey(store: Path | str, policy: AccessPolicy | None = None
           ) -> tuple[int, list[tuple[Path, str]]]:
    """One pass over what bahfs wrote in ``store``: the bytes it takes on disk, and
    :func:`drifting`'s answer."""
    store = Path(store)
    policy = policy or load_policy(store)
    root = os.lstat(store)
    out = []
    used = 0
    if (what := _root_drift(root)) is not None:
        out.append((store, what))
    for path, st in _walk(store):
        used += st.st_blocks * 512
        if (what := policy.drift(path, st, root.st_gid)) is not None:
            out.append((Path(path), what))
    return used, out


def drifting(store: Path | str, policy: AccessPolicy | None = None
             ) -> list[tuple[Path, str]]:
    """Every path bahfs wrote in ``store`` (:data:`BAHFS_ENTRIES` and what is under
    them) that differs from its policy, with how; the store directory itself only
    where others have access to it."""
    return survey(store, policy)[1]


def fix_drift(store: Path | str) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Repair the drifting paths (mode, and the group: the named one, else the store
    directory's; the store directory loses the access of others); returns those
    repaired and those that could not be (with why: a path of another user can only
    be changed by its owner or root)."""
    store = Path(store)
    policy = load_policy(store)
    if policy.gid is None and policy.scope == "group":
        policy = AccessPolicy(policy.scope, None, os.lstat(store).st_gid)
    fixed, failed = [], []
    for path, _ in drifting(store, policy):
        try:
            if path == store:
                os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) & ~0o007)
            else:
                policy.apply(path)
            fixed.append(path)
        except OSError as exc:
            failed.append((path, exc.strerror or str(exc)))
    return fixed, failed
