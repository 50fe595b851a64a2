"""A peer library's own virtual environment: created once, reused, and run as a subprocess.

A peer benchmark never imports the peer into our environment. :class:`PeerEnvironment` makes
a virtual environment under a cache folder (default
``~/.cache/continual-budget/peers/<name>``; the environment variable
``CONTINUAL_BUDGET_PEERS`` or the scripts' ``--cache`` move it), installs the pinned
requirements there with pip, and runs the peer's side of a benchmark in it as a subprocess
that prints one JSON document.

**Torch is shared, not reinstalled.** The environment sees *our* torch through a ``.pth``
file that names an overlay folder next to the environment. The overlay holds symbolic links
to the files of our environment's torch distribution and of everything it requires
(``nvidia-*``, ``triton``, ``sympy``, ...), and nothing else: numpy, scipy and the rest are
the peer's own, at the versions it pins. The reasons:

- The peer and we then run on the same torch build, so a speed ratio measures the two
  libraries' code and not two builds of torch.
- Our torch is a 5.5 GB CUDA build; pip would take the same wheel from the local disk and
  copy it again into every peer environment.
- ``--system-site-packages`` would not help: torch lives in our virtual environment, not in
  the interpreter's site-packages.

pip sees the linked distributions as installed, so a requirement such as ``torch>=1.10`` is
satisfied without a download, and a ``torch==<ours>`` constraint stops a resolver from
replacing it. The overlay lies outside the environment's prefix: pip never uninstalls from
it (it reports such packages as outside the environment), so nothing in our environment can
be touched. A peer that pins an incompatible version of one of torch's pure-Python
requirements gets its own copy, which comes first on ``sys.path``.

An environment is reused when its stamp (requirements, constraints, shared distributions,
interpreter, torch version) matches; otherwise it is made again from scratch.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

__all__ = [
    "PeerEnvironment",
    "default_cache",
    "distribution_closure",
    "last_json",
    "top_level_entries",
]

CACHE_VARIABLE = "CONTINUAL_BUDGET_PEERS"


def default_cache() -> Path:
    """The folder that holds every peer environment: ``$CONTINUAL_BUDGET_PEERS`` or
    ``~/.cache/continual-budget/peers``."""
    value = os.environ.get(CACHE_VARIABLE)
    if value:
        return Path(value).expanduser()
    return Path.home() / ".cache" / "continual-budget" / "peers"


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def distribution_closure(
    names: Iterable[str], distribution: Callable[[str], Any] = metadata.distribution
) -> list[str]:
    """Names of the installed distributions ``names`` and of every distribution they require,
    recursively (markers evaluated for this interpreter, extras followed), sorted.

    A requirement that is not installed is left out.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> installed = {
    ...     "a": SimpleNamespace(requires=["b[x]", "c; python_version < '3'"]),
    ...     "b": SimpleNamespace(requires=["d; extra == 'x'", "e; extra == 'y'"]),
    ...     "c": SimpleNamespace(requires=None),
    ...     "d": SimpleNamespace(requires=None),
    ... }
    >>> def lookup(name):
    ...     if name not in installed:
    ...         raise metadata.PackageNotFoundError(name)
    ...     return installed[name]
    >>> distribution_closure(["a"], lookup)
    ['a', 'b', 'd']
    """
    seen: dict[str, set[str]] = {}
    pending = [(_normalize(name), frozenset[str]()) for name in names]
    while pending:
        name, extras = pending.pop()
        if name in seen and extras <= seen[name]:
            continue
        try:
            dist = distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.setdefault(name, set()).update(extras)
        for line in dist.requires or ():
            requirement = Requirement(line)
            marker = requirement.marker
            environments = [{"extra": e} for e in sorted(extras)] or [{"extra": ""}]
            if marker is not None and not any(marker.evaluate(env) for env in environments):
                continue
            pending.append((_normalize(requirement.name), frozenset(requirement.extras)))
    return sorted(seen)


def top_level_entries(files: Iterable[Any]) -> list[str]:
    """First components of a distribution's installed paths (``RECORD``), without the
    entries that lie outside site-packages (scripts in ``../../../bin``).

    Examples
    --------
    >>> top_level_entries(["torch/__init__.py", "torch-2.1.dist-info/RECORD",
    ...                    "../../../bin/torchrun", "functorch/x.py"])
    ['functorch', 'torch', 'torch-2.1.dist-info']
    """
    entries = set()
    for path in files:
        parts = Path(str(path)).parts
        if parts and parts[0] not in ("..", "/", "__pycache__"):
            entries.add(parts[0])
    return sorted(entries)


def last_json(text: str) -> dict[str, Any]:
    """The last line of ``text`` that parses as a JSON object (a side script prints its
    result last; libraries may print before it).

    Examples
    --------
    >>> last_json('loading...\\n{"a": 1}\\n')
    {'a': 1}
    """
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    raise ValueError(f"no JSON object in the output; its end was:\n{text[-2000:]}")


@dataclass(frozen=True)
class PeerEnvironment:
    """A virtual environment for one peer library, with our torch shared into it.

    Parameters
    ----------
    name
        Folder name under the cache (``easytpp``, ``avalanche``, ``recbole``).
    requirements
        pip requirement specifiers, pinned (``"easy-tpp==0.3.0"``).
    constraints
        Extra pins for the resolver (old numpy for an old peer, ...); each shared
        distribution is pinned to our version besides.
    share
        Distributions of our environment made visible there with what they require.
    cache
        Folder of the environments; :func:`default_cache` when None.
    python
        Interpreter the environment is made from; our environment's base interpreter when
        None.
    pip_options
        Further options of ``pip install``.

    Examples
    --------
    >>> env = PeerEnvironment("demo", ("peer==1.0",), constraints=("numpy<2",),
    ...                       share=(), cache=Path("/c"), python="/usr/bin/python3")
    >>> env.venv_command()
    ['/usr/bin/python3', '-m', 'venv', '/c/demo/venv']
    >>> env.install_command()  # doctest: +NORMALIZE_WHITESPACE
    ['/c/demo/venv/bin/python', '-m', 'pip', 'install', '--disable-pip-version-check',
     '-c', '/c/demo/constraints.txt', 'peer==1.0']
    >>> env.constraint_lines()
    ['numpy<2']
    """

    name: str
    requirements: tuple[str, ...]
    constraints: tuple[str, ...] = ()
    share: tuple[str, ...] = ("torch",)
    cache: Path | None = None
    python: str | None = None
    pip_options: tuple[str, ...] = ()

    # ------------------------------------------------------------------ paths
    @property
    def root(self) -> Path:
        """``<cache>/<name>``: the environment, the overlay and the stamp."""
        return (default_cache() if self.cache is None else Path(self.cache)) / self.name

    @property
    def venv_dir(self) -> Path:
        return self.root / "venv"

    @property
    def overlay_dir(self) -> Path:
        """Links to our shared distributions; outside the environment's prefix."""
        return self.root / "shared-site"

    @property
    def venv_python(self) -> Path:
        return self.venv_dir / "bin" / "python"

    @property
    def stamp_file(self) -> Path:
        return self.root / "stamp.json"

    # --------------------------------------------------------------- commands
    def base_python(self) -> str:
        """The interpreter that makes the environment: the one our environment was made
        from (same Python version as ours)."""
        if self.python is not None:
            return str(self.python)
        base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
        return str(base if base.exists() else sys.executable)

    def venv_command(self) -> list[str]:
        """The command that makes the virtual environment."""
        return [self.base_python(), "-m", "venv", str(self.venv_dir)]

    def constraint_lines(self) -> list[str]:
        """The constraints file's lines: ``constraints``, then our version of each shared
        distribution (so that no resolver replaces it)."""
        return [*self.constraints, *(f"{name}=={metadata.version(name)}" for name in self.share)]

    def install_command(self) -> list[str]:
        """The ``pip install`` command run inside the environment."""
        command = [str(self.venv_python), "-m", "pip", "install", "--disable-pip-version-check"]
        command += ["-c", str(self.root / "constraints.txt"), *self.pip_options]
        return command + list(self.requirements)

    def stamp(self) -> dict[str, Any]:
        """What an environment must have been made with to be reused."""
        return {
            "requirements": list(self.requirements),
            "constraints": self.constraint_lines(),
            "pip_options": list(self.pip_options),
            "share": {name: metadata.version(name) for name in self.share},
            "python": self.base_python(),
        }

    # ----------------------------------------------------------------- making
    def ready(self) -> bool:
        """True when the environment exists and was made with this stamp."""
        if not (self.venv_python.exists() and self.stamp_file.exists()):
            return False
        try:
            return json.loads(self.stamp_file.read_text()) == self.stamp()
        except json.JSONDecodeError:
            return False

    def ensure(self, *, log: Callable[[str], Any] = print, rebuild: bool = False) -> Path:
        """Make (or reuse) the environment; return its interpreter.

        Network access to the package index is needed the first time only.
        """
        if self.ready() and not rebuild:
            return self.venv_python
        log(f"[peers] making {self.venv_dir} ({', '.join(self.requirements)})")
        if self.root.exists():
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True)
        _run(self.venv_command(), log)
        self._link_shared()
        (self.root / "constraints.txt").write_text("\n".join(self.constraint_lines()) + "\n")
        _run(self.install_command(), log, env=self.pip_environment())
        self.stamp_file.write_text(json.dumps(self.stamp(), indent=2))
        return self.venv_python

    def pip_environment(self) -> dict[str, str]:
        """pip's environment: ours, without a ``PIP_CONSTRAINT`` that would pin the peer's
        packages to our versions."""
        env = dict(os.environ)
        env.pop("PIP_CONSTRAINT", None)
        return env

    def shared_links(self) -> dict[str, Path]:
        """Overlay entry name -> the file or folder of our environment it links to: every
        top-level entry of every distribution in :func:`distribution_closure` of ``share``."""
        links: dict[str, Path] = {}
        for name in distribution_closure(self.share):
            dist = metadata.distribution(name)
            site = Path(str(dist.locate_file("")))
            for entry in top_level_entries(dist.files or ()):
                if (site / entry).exists():
                    links.setdefault(entry, site / entry)
        return links

    def _link_shared(self) -> None:
        if not self.share:
            return
        self.overlay_dir.mkdir(parents=True, exist_ok=True)
        for entry, target in self.shared_links().items():
            (self.overlay_dir / entry).symlink_to(target)
        purelib = subprocess.run(
            [str(self.venv_python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        (Path(purelib) / "_continual_budget_shared.pth").write_text(f"{self.overlay_dir}\n")

    # ---------------------------------------------------------------- running
    def freeze(self) -> list[str]:
        """``pip freeze`` of the environment, shared distributions included."""
        out = subprocess.run(
            [str(self.venv_python), "-m", "pip", "freeze", "--disable-pip-version-check"],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.split()

    def run(
        self,
        script: Path,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Run ``script`` with the environment's interpreter (in ``cwd``) and return the JSON
        object it prints last. One torch thread (``OMP_NUM_THREADS=1``) unless ``env`` says
        otherwise."""
        command = self.run_command(script, args)
        full_env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        full_env.pop("PYTHONPATH", None)  # nothing of ours leaks into the peer
        full_env.update(env or {})
        out = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=full_env,
            cwd=cwd,
            timeout=timeout,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({out.returncode}):\n{out.stderr[-4000:]}"
            )
        return last_json(out.stdout)

    def run_command(self, script: Path, args: Sequence[str] = ()) -> list[str]:
        """The command that runs a side script in the environment.

        Examples
        --------
        >>> env = PeerEnvironment("demo", (), share=(), cache=Path("/c"))
        >>> env.run_command(Path("side.py"), ["--epochs", "2"])
        ['/c/demo/venv/bin/python', '-I', 'side.py', '--epochs', '2']
        """
        return [str(self.venv_python), "-I", str(script), *args]


def _run(command: Sequence[str], log: Callable[[str], Any], env: Mapping[str, str] | None = None):
    log("[peers] $ " + " ".join(command))
    subprocess.run(list(command), check=True, env=None if env is None else dict(env))
