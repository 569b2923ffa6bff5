"""The listening TCP sockets of a process tree, read from /proc (no `ss`, no psutil): what a search exposes."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from pathlib import Path

_LISTEN = "0A"  # TCP state in /proc/net/tcp


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _address(text: str, v6: bool) -> str:
    ip_hex, port_hex = text.split(":")
    raw = bytes.fromhex(ip_hex)
    if sys.byteorder == "little":  # /proc prints 32-bit words in host byte order
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    ip = socket.inet_ntop(socket.AF_INET6 if v6 else socket.AF_INET, raw)
    return f"[{ip}]:{int(port_hex, 16)}" if v6 else f"{ip}:{int(port_hex, 16)}"


def listening_sockets(root: int | None = None) -> list[tuple[int, str, str]]:
    """(pid, process name, address:port) of every listening TCP socket held by ``root`` (default: this process)
    or a descendant."""
    root = os.getpid() if root is None else root
    inodes: dict[int, str] = {}
    for name, v6 in (("tcp", False), ("tcp6", True)):
        try:
            lines = Path(f"/proc/{root}/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == _LISTEN:
                inodes[int(fields[9])] = _address(fields[1], v6)
    out = set()
    for pid in process_tree(root):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and int(link[8:-1]) in inodes:
                out.add((pid, name, inodes[int(link[8:-1])]))
    return sorted(out)


def is_loopback(address: str) -> bool:
    """127.0.0.0/8, ::1, and IPv4-mapped ::ffff:127.x (gRPC's IPv6 socket for a 127.0.0.1 bind)."""
    ip = ipaddress.ip_address(address.rsplit(":", 1)[0].strip("[]"))
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback
