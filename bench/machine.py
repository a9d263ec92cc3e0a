"""What the figures were measured on: CPU, cores, Python, SQLite, libraries, the data dir's disk."""

from __future__ import annotations

import os
import platform
import sqlite3
from pathlib import Path
from typing import Any


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _disk(path: Path) -> str:
    """Device and filesystem of the mount that holds `path`, and whether it is an SSD."""
    target = str(path.resolve())
    best: tuple[str, str, str] = ("?", "?", "/")
    try:
        mounts = Path("/proc/mounts").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "unknown"
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        device, mount, fstype = parts[0], parts[1], parts[2]
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best[2]):
            best = (device, fstype, mount)
    device, fstype, _ = best
    kind = ""
    name = Path(device).name
    for candidate in (name, name.rstrip("0123456789"), name.rstrip("0123456789").removesuffix("p")):
        rotational = Path(f"/sys/block/{candidate}/queue/rotational")
        if rotational.exists():
            kind = ", rotational" if rotational.read_text().strip() == "1" else ", non-rotational"
            break
    return f"{device} ({fstype}{kind})"


def _version(module: str) -> str:
    try:
        imported = __import__(module)
    except ImportError:
        return "-"
    return str(getattr(imported, "__version__", "?"))


def machine(data_dir: Path) -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count() or 0,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "ptb": _version("telegram"),
        "aiogram": _version("aiogram"),
        "disk": _disk(data_dir),
    }


def machine_line(info: dict[str, Any]) -> str:
    return (f"{info['cpu']}, {info['cores']} cores, {info['os']}, Python {info['python']}, "
            f"SQLite {info['sqlite']}, python-telegram-bot {info['ptb']}, aiogram {info['aiogram']}, "
            f"disk {info['disk']}")
