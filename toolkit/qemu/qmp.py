"""Minimal QMP (QEMU Machine Protocol) client over a unix socket, standard library only.

QMP speaks one JSON object per line.  After connecting, QEMU sends a greeting;
the client must send ``qmp_capabilities`` before any other command.  Each
command is answered by exactly one ``{"return": ...}`` or ``{"error": {...}}``
object; asynchronous ``{"event": ...}`` objects may arrive at any time in
between and are collected in :attr:`QMPClient.events`.

>>> with QMPClient("/tmp/vm.qmp") as qmp:          # doctest: +SKIP
...     qmp.execute("query-status")["status"]
'running'
"""
from __future__ import annotations

import json
import os
import socket
import time
from typing import Self


class QMPError(RuntimeError):
    """A command was answered with an error.

    Parameters
    ----------
    command : str
        The QMP command that failed.
    error_class : str
        QEMU's error class, e.g. ``"GenericError"``.
    desc : str
        QEMU's human-readable error description.
    """

    def __init__(self, command: str, error_class: str, desc: str):
        super().__init__(f"{command}: {desc} ({error_class})")
        self.command = command
        self.error_class = error_class
        self.desc = desc


class QMPClient:
    """A connection to one QEMU's QMP unix socket.

    Parameters
    ----------
    path : str or os.PathLike
        Path of the unix socket (``-qmp unix:PATH,server=on,wait=off``).
    timeout : float, optional
        How long to wait for the socket to accept and for each reply [s].

    Attributes
    ----------
    greeting : dict
        QEMU's greeting (``{"QMP": {"version": ..., "capabilities": ...}}``).
    events : list of dict
        Asynchronous events received so far, in arrival order, each as sent
        by QEMU (``event``, ``data``, ``timestamp``).
    """

    def __init__(self, path: str | os.PathLike, timeout: float = 10.0):
        self.path = os.fspath(path)
        self.timeout = timeout
        self.events: list[dict] = []
        self._next_id = 0
        self._sock = self._connect()
        try:
            self._file = self._sock.makefile("rb")
            self.greeting = self._read()
            if "QMP" not in self.greeting:
                raise ConnectionError(f"{self.path}: not a QMP greeting: {self.greeting!r}")
            self.execute("qmp_capabilities")
        except BaseException:
            self.close()
            raise

    def _connect(self) -> socket.socket:
        # QEMU creates the socket a moment after it starts; retry until the deadline.
        deadline = time.monotonic() + self.timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.path)
                return sock
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                if time.monotonic() > deadline:
                    raise ConnectionError(
                        f"no QMP socket at {self.path} after {self.timeout} s") from None
                time.sleep(0.02)

    def _read(self) -> dict:
        line = self._file.readline()
        if not line:
            raise ConnectionError(f"{self.path}: QEMU closed the QMP connection")
        return json.loads(line)

    def execute(self, command: str, arguments: dict | None = None) -> object:
        """Run one command and return its ``return`` value.

        Parameters
        ----------
        command : str
            QMP command name, e.g. ``"query-migrate"``.
        arguments : dict, optional
            The command's arguments.

        Returns
        -------
        object
            The ``return`` member of QEMU's reply (often a dict, ``{}`` for
            commands without a result).

        Raises
        ------
        QMPError
            QEMU answered with an error; the message carries QEMU's ``desc``.
        ConnectionError
            The connection closed before the reply came.
        TimeoutError
            No reply within ``timeout`` seconds.
        """
        self._next_id += 1
        request: dict = {"execute": command, "id": self._next_id}
        if arguments:
            request["arguments"] = arguments
        self._sock.sendall(json.dumps(request).encode() + b"\n")
        while True:
            reply = self._read()
            if "event" in reply:
                self.events.append(reply)
            elif reply.get("id") == self._next_id:
                if "error" in reply:
                    err = reply["error"]
                    raise QMPError(command, err.get("class", "?"), err.get("desc", ""))
                return reply["return"]

    def close(self) -> None:
        """Close the connection (QEMU keeps running)."""
        for closeable in (getattr(self, "_file", None), self._sock):
            if closeable is not None:
                closeable.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
