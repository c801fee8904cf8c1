"""Run a command inside a private network namespace that has loopback and one test interface, nothing else.

Why a namespace: WebRTC's ICE gathers no candidate on loopback (Chromium skips it, aioice drops 127.0.0.1), so a
browser and the page can only connect over an interface with another address; and test traffic must never reach
this machine's real interfaces. A fresh namespace (``unshare -n``) gives both: ``lo`` plus a veth pair whose one end
has ``TEST_ADDRESS``, with no route out. The services, the page and the browser all run inside it and talk over its
own 127.0.0.1 (HTTP) and ``TEST_ADDRESS`` (ICE host candidates); nothing inside can reach anything outside.

``python -m bench.netns -- COMMAND...`` is the inside half: it refuses to run unless it finds only ``lo`` (so it
never touches a shared namespace), brings up the interfaces with iproute2's ``ip`` and execs COMMAND.
``isolated_command`` / ``run_isolated`` wrap a command in ``unshare -n`` (root) or ``unshare -rn`` (an unprivileged
user: a user namespace maps it to root inside, where the kernel allows it) and that inside half.
iproute2 does the setup rather than a netlink library: the frontend venv has none and ``ip`` is on every Linux box.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from .processes import REPO_ROOT

TEST_ADDRESS = "10.200.0.1"
"""The namespace's one non-loopback address (on the veth end ``TEST_INTERFACE``, prefix /24)."""
TEST_INTERFACE = "v0"
PEER_INTERFACE = "v1"


def unshare_prefix() -> list[str]:
    """``unshare -n`` as root, else ``unshare -rn`` (a user namespace in which this user is root)."""
    return ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]


def isolated_command(command: Sequence[str], python: str | None = None) -> list[str]:
    """``command`` wrapped so it runs in a new network namespace set up by this module (``python -m bench.netns``)."""
    return [*unshare_prefix(), python or sys.executable, "-m", "bench.netns", "--", *command]


def run_isolated(
    command: Sequence[str],
    *,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``command`` in a fresh private network namespace from the repository root and wait for it.

    Its stdout and stderr go to ``log_path`` (else are captured). Raises subprocess.TimeoutExpired after
    ``timeout_s`` seconds (the whole process group is killed first) and RuntimeError when ``unshare`` is refused
    (not root and no user namespaces).
    """
    full_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    log = log_path.open("ab") if log_path else None
    try:
        process = subprocess.Popen(
            isolated_command(command), cwd=REPO_ROOT, env=full_env, start_new_session=True,
            stdout=log or subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            out, _ = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.communicate()
            raise
    finally:
        if log:
            log.close()
    done = subprocess.CompletedProcess(process.args, process.returncode, out or b"", b"")
    text = (out or b"").decode(errors="replace") if log is None else _tail(log_path)
    if done.returncode != 0 and "unshare failed" in text:
        raise RuntimeError(f"could not create a network namespace ({' '.join(unshare_prefix())}): {text[-500:]}")
    return done


def _tail(path: Path | None, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:] if path else ""
    except OSError:
        return ""


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


def interfaces() -> list[str]:
    """Names of the network interfaces of the current namespace."""
    return [line.split(":")[1].strip().split("@")[0] for line in _ip("-o", "link", "show").splitlines()]


def set_up_interfaces(dad_timeout_s: float = 10.0) -> None:
    """In a fresh namespace: ``lo`` up, a veth pair with ``TEST_ADDRESS``/24 on ``TEST_INTERFACE``, both up.

    Raises RuntimeError if the namespace has any interface but ``lo`` (then this is not a private namespace).
    IPv6 is switched off for the new interfaces first: a link-local address still in duplicate address detection
    when Chromium starts makes it report a network change and drop the page load (``ERR_NETWORK_CHANGED``).
    """
    found = interfaces()
    if found != ["lo"]:
        raise RuntimeError(f"refusing to configure a namespace that is not private: interfaces {found}")
    _ip("link", "set", "lo", "up")
    with contextlib.suppress(OSError):  # no IPv6 in this kernel, or not writable: the wait below covers it
        Path("/proc/sys/net/ipv6/conf/default/disable_ipv6").write_text("1\n")
    _ip("link", "add", TEST_INTERFACE, "type", "veth", "peer", "name", PEER_INTERFACE)
    _ip("addr", "add", f"{TEST_ADDRESS}/24", "dev", TEST_INTERFACE)
    _ip("link", "set", TEST_INTERFACE, "up")
    _ip("link", "set", PEER_INTERFACE, "up")
    deadline = time.monotonic() + dad_timeout_s
    while _ip("-6", "addr", "show", "tentative").strip() and time.monotonic() < deadline:
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        raise SystemExit("usage: unshare -n python -m bench.netns -- COMMAND [ARGS...]")
    set_up_interfaces()
    os.execvp(args[0], args)


if __name__ == "__main__":
    main()
