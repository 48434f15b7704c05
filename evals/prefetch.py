"""`evals prefetch`: download the model and every dataset a card needs into one folder to carry to
an air-gapped machine, and write its manifest.

What is needed comes from evals/offline.py (`card_needs`); each hub repository is resolved to a
commit (`repo_info`), its wanted files are chosen from the listing, and `snapshot_download` fetches
exactly those at that commit into `datasets/ORG/NAME/` or `models/ORG/NAME/` (the client's own
bookkeeping folder `.cache/` is removed afterwards, so that data folders hold only data). A local
model path is recorded where it is (`--copy-local` copies it into `models/local/`); `pkg:` and
`builtin:` models need nothing (the installed package has the file; the built-in model is built
from code). `manifest.json` records every item: what, from where, the revision requested and the
commit resolved, and each file's size and sha256. Running prefetch again into the same folder adds
what is missing and keeps what is already there at the same commit. Unpinned sources (AIME, GPQA:
"main") record the commit they resolved to at download time.

It does not run anything, and `evals run --offline` (evals/offline.py) reads the folder.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.models import resolve_model
from evals.offline import (
    MANIFEST,
    HubNeed,
    Manifest,
    OfflineError,
    card_needs,
    check_files,
    read_manifest,
    row_plans,
)
from evals.planning import RunOptions, card_for, check_task_inputs

HASH_CHUNK = 1 << 20
CLIENT_BOOKKEEPING = ".cache"  # huggingface_hub's per-download metadata inside a local_dir


@dataclass
class PrefetchOptions:
    folder: Path
    run: RunOptions = field(default_factory=RunOptions)  # card, tasks, variant, backend, model
    copy_local: bool = False
    endpoint: str | None = None  # the hub's address (default: huggingface_hub's, i.e. HF_ENDPOINT)
    log: Callable[[str], None] = print


@dataclass
class PrefetchOutcome:
    manifest: Manifest
    fetched: list[str]  # items downloaded or copied by this call
    kept: list[str]  # items already in the folder at the same commit


def prefetch(options: PrefetchOptions) -> PrefetchOutcome:
    """Fetch everything the card of `options.run` needs into `options.folder`; write the manifest."""
    folder = options.folder.expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        raise OfflineError(f"--to {folder} is a file; pass a directory for the prefetched files")
    manifest = read_manifest(folder, flag="--to") if (folder / MANIFEST).exists() else Manifest(folder)
    card = card_for(options.run)
    check_task_inputs(card, options.run)
    datasets, models = card_needs(card, options.run)
    needs = _merged([need for _, need in datasets] + [need for _, need in models])
    _refuse_offline_mode(needs)
    folder.mkdir(parents=True, exist_ok=True)
    outcome = PrefetchOutcome(manifest, [], [])
    for need in needs:
        _fetch_hub(need, manifest, options, outcome)
    for spec in dict.fromkeys(plan.model for plan in row_plans(card, options.run)):
        _record_local_model(spec, manifest, options, outcome)
    manifest.created = time.strftime("%Y-%m-%dT%H:%M:%S")
    manifest.requests.append(
        {
            "card": card.name,
            "card_sha256": card.sha256,
            "rows": [row.label for row in card.rows],
            "options": {
                "tasks": options.run.tasks,
                "variant": options.run.variant,
                "backend": options.run.backend,
                "model": options.run.model,
            },
            "at": manifest.created,
        }
    )
    _write_manifest(manifest)
    return outcome


def _merged(needs: Iterable[HubNeed]) -> list[HubNeed]:
    """One need per (kind, repo, revision), with the patterns and users of all of them."""
    merged: dict[tuple[str, str, str], HubNeed] = {}
    for need in needs:
        key = (need.kind, need.repo, need.revision)
        if key in merged:
            old = merged[key]
            need = HubNeed(
                need.kind, need.repo, need.revision, tuple(dict.fromkeys(old.patterns + need.patterns)),
                old.data_path, old.ignored, tuple(dict.fromkeys(old.used_by + need.used_by)),
            )  # fmt: skip
        merged[key] = need
    return list(merged.values())


def _refuse_offline_mode(needs: list[HubNeed]) -> None:
    if not needs:
        return
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise OfflineError(
            "HF_HUB_OFFLINE is set, so nothing can be downloaded; unset it (and HF_DATASETS_OFFLINE) to prefetch"
        )


# --- hub items ------------------------------------------------------------------------------------


def _fetch_hub(need: HubNeed, manifest: Manifest, options: PrefetchOptions, outcome: PrefetchOutcome) -> None:
    from huggingface_hub import HfApi, snapshot_download

    api = HfApi(endpoint=options.endpoint)
    try:
        info = api.repo_info(need.repo, repo_type=need.kind, revision=need.revision)
    except Exception as exc:  # offline, gated, unknown repo or revision: one line naming the item
        raise OfflineError(f"cannot resolve {need.describe()} on the hub: {_reason(exc)}") from exc
    resolved = str(info.sha)
    existing = _existing(manifest, need)
    patterns = (
        tuple(dict.fromkeys((*existing.get("patterns", ()), *need.patterns))) if existing else need.patterns
    )
    siblings = [s.rfilename for s in getattr(info, "siblings", None) or ()]
    wanted = select_files(siblings, patterns, need.ignored)
    missing = [p for p in need.patterns if not any(fnmatch.fnmatchcase(name, p) for name in wanted)]
    if missing:
        raise OfflineError(
            f"{need.kind} {need.repo}@{resolved[:12]} has no file matching {', '.join(missing)}; "
            f"its files: {', '.join(siblings[:8])}{' ...' if len(siblings) > 8 else ''}"
        )
    target = manifest.folder / need.folder
    have = {f["path"] for f in existing.get("files", [])}
    if (
        existing.get("resolved") == resolved
        and set(wanted) <= have
        and check_files(manifest.folder, existing) is None
    ):
        outcome.kept.append(need.describe())
        return
    if existing and existing.get("resolved") != resolved:
        shutil.rmtree(target, ignore_errors=True)  # another commit of an unpinned source
    options.log(f"fetching {need.describe()} at {resolved[:12]}: {len(wanted)} files")
    try:
        snapshot_download(
            need.repo, repo_type=need.kind, revision=resolved, local_dir=target, allow_patterns=wanted,
            endpoint=options.endpoint,
        )  # fmt: skip
    except Exception as exc:
        raise OfflineError(f"cannot download {need.describe()}: {_reason(exc)}") from exc
    shutil.rmtree(target / CLIENT_BOOKKEEPING, ignore_errors=True)
    item = {
        "kind": need.kind,
        "repo": need.repo,
        "revision": need.revision,
        "resolved": resolved,
        "pinned": need.pinned,
        "source": f"{api.endpoint}/{'datasets/' if need.kind == 'dataset' else ''}{need.repo}",
        "patterns": list(patterns),
        "ignored": list(need.ignored),
        "used_by": sorted(set(existing.get("used_by", [])) | set(need.used_by))
        if existing
        else list(need.used_by),
        "path": need.folder,
        "data_path": need.data_path,
        "files": [file_entry(target, name) for name in sorted(wanted)],
    }
    _replace_item(manifest, existing, item)
    outcome.fetched.append(need.describe())


def select_files(names: Iterable[str], patterns: Iterable[str], ignored: Iterable[str] = ()) -> list[str]:
    """The repo files that match a pattern and no ignored pattern; a model's `*.bin` weights are
    left out when it has safetensors."""
    patterns, ignored = list(patterns), list(ignored)
    names = list(names)
    if "*" in patterns and any(n.endswith(".safetensors") for n in names):
        ignored.append("*.bin")
    return sorted(
        n
        for n in names
        if any(fnmatch.fnmatchcase(n, p) for p in patterns)
        and not any(fnmatch.fnmatchcase(n, p) for p in ignored)
    )


def _existing(manifest: Manifest, need: HubNeed) -> dict[str, Any]:
    for item in manifest.items:
        if (item.get("kind"), item.get("repo"), item.get("revision")) == (
            need.kind,
            need.repo,
            need.revision,
        ):
            return item
    return {}


def _replace_item(manifest: Manifest, old: dict[str, Any], new: dict[str, Any]) -> None:
    manifest.items = [item for item in manifest.items if item is not old] + [new]


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    reason = f"{type(exc).__name__}: {text[:300]}"
    if type(exc).__name__ == "GatedRepoError" or any(code in text for code in ("401 Client", "403 Client")):
        reason += "; the repository is gated: accept its terms on the hub, then set HF_TOKEN or log in"
    return reason


# --- local models ---------------------------------------------------------------------------------


def _record_local_model(
    spec: str, manifest: Manifest, options: PrefetchOptions, outcome: PrefetchOutcome
) -> None:
    """Record a local model path (copied with --copy-local); pkg: files are recorded where the
    package has them; built-in models and hub ids (fetched above) are left alone."""
    if spec.startswith("builtin:") or not (spec.startswith("pkg:") or Path(spec).expanduser().exists()):
        return
    source = Path(resolve_model(spec)).expanduser().resolve()
    path: str | None = None  # the copy's folder in the prefetch folder
    model: str | None = None  # what --model gets: that folder, or the file in it
    if options.copy_local and not spec.startswith("pkg:"):
        path = f"models/local/{source.stem if source.is_file() else source.name}"
        model = f"{path}/{source.name}" if source.is_file() else path
        target = manifest.folder / path
        if not target.exists():
            options.log(f"copying {source} to {target}")
            if source.is_dir():
                shutil.copytree(source, target)
            else:
                target.mkdir(parents=True)
                shutil.copy2(source, target / source.name)
    base = manifest.folder / path if path else (source if source.is_dir() else source.parent)
    names = [source.name] if source.is_file() else sorted(
        str(p.relative_to(source)) for p in source.rglob("*") if p.is_file()
    )  # fmt: skip
    item = {
        "kind": "local-model",
        "spec": spec,
        "source": str(source),
        "path": path,
        "model": model,
        "files": [file_entry(base, name) for name in names],
    }
    old = next((i for i in manifest.items if i.get("kind") == "local-model" and i.get("spec") == spec), {})
    _replace_item(manifest, old, item)
    outcome.fetched.append(f"local model {spec}" + (f" copied to {path}" if path else " (referenced)"))


# --- files ----------------------------------------------------------------------------------------


def file_entry(base: Path, name: str) -> dict[str, Any]:
    """A file's manifest entry: its path relative to `base`, size and sha256."""
    path = base / name
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return {"path": name, "size": path.stat().st_size, "sha256": digest.hexdigest()}


def _write_manifest(manifest: Manifest) -> None:
    path = manifest.folder / MANIFEST
    staging = path.with_name(f"{MANIFEST}.{os.getpid()}.tmp")
    staging.write_text(json.dumps(manifest.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    staging.replace(path)
