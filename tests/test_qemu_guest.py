"""The dirtier guest's parameter block, statistics and the harness's checks, without QEMU.

Nothing here starts QEMU: images are patched into a synthetic boot sector
(the real one is built only when nasm is installed), and every
``run_migration`` call fails its parameter checks, or, where the checks pass,
finds no QEMU at a path that does not exist.
"""
import math
import re
import shutil
import struct

import numpy as np
import pytest

from toolkit.qemu import guest, harness

NO_QEMU = "/nonexistent/qemu-system-x86_64"
ASM = guest.SOURCE.read_text()


@pytest.fixture
def sector(tmp_path):
    """A 512-byte stand-in for the built boot sector: zeros, the magic and the signature."""
    data = bytearray(512)
    data[guest._PARAMS_OFFSET:guest._PARAMS_OFFSET + 4] = guest._MAGIC
    data[510:] = b"\x55\xaa"
    path = tmp_path / "sector.bin"
    path.write_bytes(bytes(data))
    return path


def _asm_equ(name: str) -> int:
    return int(re.search(rf"^{name}\s+equ\s+(0x[0-9a-f]+|\d+)", ASM, re.M).group(1), 0)


def test_layout_matches_the_assembly():
    assert _asm_equ("PARAMS") == guest._PARAMS_OFFSET
    assert _asm_equ("STATS") == guest.STATS_ADDRESS
    block = ASM[ASM.index("\nparams:"):]
    assert f'db "{guest._MAGIC.decode()}"' in block
    fields = re.findall(r"^p_\w+:\s+dd\b", block, re.M)
    assert 4 + 4 * len(fields) == guest._PARAMS.size
    assert guest._PARAMS_OFFSET + guest._PARAMS.size <= 510  # the signature stays at 510
    # The guest clears the whole statistics block at boot.
    assert re.search(rf"mov edi, STATS\n\s+mov ecx, {guest.STATS_SIZE // 4}\n\s+rep stosd", ASM)


@pytest.mark.parametrize("kwargs, expected", [
    ({}, {"start_page": 256, "pages": 1024, "pattern": "sequential", "burst_pages": 1,
          "burst_ticks": 0, "lcg_mask": 1023, "cursor": 1023, "stride": 1, "zero_every": 0,
          "fill": True}),
    ({"start_page": 300, "pages": 1000, "pattern": "random", "rate": 150, "seed": 7},
     {"start_page": 300, "pages": 1000, "pattern": "random", "burst_pages": 3, "burst_ticks": 20,
      "lcg_mask": 1023, "cursor": 7, "stride": 1, "zero_every": 0, "fill": True}),
    ({"pages": 1000, "stride": 7, "zero_every": 3, "fill": False, "rate": 2000},
     {"start_page": 256, "pages": 1000, "pattern": "sequential", "burst_pages": 2,
      "burst_ticks": 1, "lcg_mask": 1023, "cursor": 993, "stride": 7, "zero_every": 3,
      "fill": False}),
    ({"pages": 1, "zero_every": 1}, {"start_page": 256, "pages": 1, "pattern": "sequential",
                                     "burst_pages": 1, "burst_ticks": 0, "lcg_mask": 0,
                                     "cursor": 0, "stride": 1, "zero_every": 1, "fill": True}),
    ({"pages": 5000, "pattern": "random", "seed": 2**40 + 9000},  # LCG start is masked
     {"start_page": 256, "pages": 5000, "pattern": "random", "burst_pages": 1, "burst_ticks": 0,
      "lcg_mask": 8191, "cursor": 9000 & 8191, "stride": 1, "zero_every": 0, "fill": True}),
])
def test_parameter_block_roundtrip(sector, tmp_path, kwargs, expected):
    out = guest.guest_image(sector, tmp_path / "g.img", **kwargs)
    assert out.stat().st_size == 1474560
    assert guest.read_params(out) == expected
    data = out.read_bytes()
    original = sector.read_bytes()
    # Only the parameter block changed.
    block = slice(guest._PARAMS_OFFSET, guest._PARAMS_OFFSET + guest._PARAMS.size)
    assert data[:block.start] == original[:block.start]
    assert data[block.stop:512] == original[block.stop:]
    fill_words = struct.unpack_from("<I", data, block.stop - 4)[0]
    assert fill_words == (expected["pages"] if expected["fill"] else 0)


def test_not_a_dirtier_sector(tmp_path):
    other = tmp_path / "other.bin"
    other.write_bytes(bytes(510) + b"\x55\xaa")
    with pytest.raises(ValueError, match="not a dirtier boot sector"):
        guest.guest_image(other, tmp_path / "g.img")
    with pytest.raises(ValueError, match="not a dirtier image"):
        guest.read_params(other)


@pytest.mark.skipif(shutil.which("nasm") is None, reason="nasm not installed")
def test_built_sector(tmp_path):
    image = guest.build_guest(tmp_path)
    data = image.read_bytes()
    assert len(data) == 512 and data[510:] == b"\x55\xaa"
    assert guest.read_params(image) == guest.read_params(
        guest.guest_image(image, tmp_path / "g.img"))  # the assembled defaults are guest_image's
    assert guest.READY_MARK in data


def test_parse_stats():
    data = struct.pack("<IQI", 4000, 2**33 + 5, 77) + b"tail"
    stats = guest.parse_stats(data)
    assert stats == (4000, 2**33 + 5, 77)
    assert (stats.ticks, stats.writes, stats.cursor) == (4000, 2**33 + 5, 77)
    assert stats[1] == stats.writes
    assert guest.STATS_SIZE == 16
    with pytest.raises(ValueError, match="16 B"):
        guest.parse_stats(data[:12])


def _simulate(pages: int, stride: int, writes: int) -> list[int]:
    """The sequential loop of dirtier.asm: advance the cursor by stride, then write."""
    cursor = (pages - stride) % pages  # the cursor parameter guest_image stores
    seen = []
    for _ in range(writes):
        cursor += stride
        if cursor >= pages:
            cursor -= pages
        seen.append(cursor)
    return seen


@pytest.mark.parametrize("pages, stride", [(1, 1), (2, 1), (10, 3), (16, 5), (1000, 7),
                                           (1024, 1023)])
def test_sequential_cursor(pages, stride):
    seen = _simulate(pages, stride, 3 * pages)
    assert seen[0] == 0
    for sweep in range(3):  # every page once per sweep
        assert sorted(seen[sweep * pages:(sweep + 1) * pages]) == list(range(pages))
    for fill in (True, False):
        fill_writes = pages if fill else 0
        for j, cursor in enumerate(seen, 1):
            assert guest.sequential_cursor(fill_writes + j, pages, stride, fill) == cursor
    assert guest.loop_writes(pages + 10, pages) == 10
    assert guest.loop_writes(10, pages, fill=False) == 10


def test_low_ram():
    assert harness.low_ram_mib(256) == 256
    assert harness.low_ram_mib(3583) == 3583
    assert harness.low_ram_mib(3584) == 3072
    assert harness.low_ram_mib(8192) == 3072


@pytest.mark.parametrize("kwargs, match", [
    ({"zero_every": -1}, r"zero_every must be an integer in \[0, 4294967295\] \[writes\].*got -1"),
    ({"zero_every": 2**32}, r"zero_every must be .* got 4294967296"),
    ({"zero_every": 1.0}, r"zero_every must be .* got 1\.0"),
    ({"zero_every": True}, r"zero_every must be .* got True"),
    ({"fill": 1}, r"fill must be a bool \(True or False\), got 1"),
    ({"fill": "no"}, r"fill must be a bool .* got 'no'"),
    ({"stride": 0}, r"stride must be an integer in \[1, 1023\] for pages 1024 \[pages\], got 0"),
    ({"stride": 1024}, r"stride must be an integer in \[1, 1023\] .* got 1024"),
    ({"pages": 1, "stride": 2}, r"stride must be an integer in \[1, 1\] for pages 1 .* got 2"),
    ({"stride": 2.5}, r"stride must be an integer .* got 2\.5"),
    ({"stride": 6}, r"stride must be coprime to pages \(gcd\(stride, pages\) == 1, so that every "
                    r"page is visited once per sweep\), got stride 6 with pages 1024 \(gcd 2\)"),
    ({"stride": 3, "pattern": "random"},
     r"stride applies to pattern 'sequential' only; must be 1 with pattern 'random', got 3"),
    ({"pattern": "zigzag"}, r"pattern must be one of \('sequential', 'random'\), got 'zigzag'"),
    ({"start_page": 10}, r"start_page must be in \[256, 1048576\) \[pages\], got 10"),
    ({"pages": 0}, r"pages must be in \[1, 1048320\]"),
])
def test_guest_image_rejects(sector, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        guest.guest_image(sector, tmp_path / "g.img", **kwargs)
    assert not (tmp_path / "g.img").exists()


@pytest.mark.parametrize("kwargs, match", [
    ({"zero_every": -1}, r"zero_every must be an integer in \[0, 4294967295\] \[writes\]"),
    ({"zero_every": "2"}, r"zero_every must be .* got '2'"),
    ({"fill": None}, r"fill must be a bool \(True or False\), got None"),
    ({"stride": 0}, r"stride must be an integer in \[1, 16383\] for pages 16384 \[pages\], got 0"),
    ({"stride": 4096}, r"stride must be coprime to pages .* got stride 4096 with pages 16384"),
    ({"stride": 5, "pattern": "random"}, r"stride applies to pattern 'sequential' only"),
    ({"prealloc": "yes"}, r"prealloc must be a bool \(True or False\), got 'yes'"),
    ({"prealloc": 1}, r"prealloc must be a bool .* got 1"),
    ({"ram_mib": 8193}, r"ram_mib must be an integer in \[16, 8192\] \[MiB\], got 8193"),
    ({"rate": -5}, r"rate must be a finite number >= 0 \[pages/s\], got -5"),
    ({"rate": "fast"}, r"rate must be a finite number >= 0 \[pages/s\] or None, got 'fast'"),
    ({"rate": float("nan")}, r"rate must be a finite number >= 0 \[pages/s\], got nan"),
    # Guests of 3.5 GiB and more keep 3 GiB below the PCI hole.
    ({"ram_mib": 8192, "start_page": 786432 - 100, "pages": 101},
     r"pages must be an integer in \[1, 100\] \[pages\], got 101 \(the range must end below "
     r"the 3072 MiB of the 8192 MiB guest RAM that lie below the 32-bit PCI hole\)"),
    ({"ram_mib": 3584, "start_page": 786432, "pages": 1},
     r"start_page must be an integer in \[256, 786431\] \[pages\], got 786432 \(.*3072 MiB of "
     r"the 3584 MiB"),
    ({"ram_mib": 3583, "pages": 3583 * 256}, r"pages must be an integer in \[1, 916992\]"),
])
def test_run_migration_rejects_before_start(tmp_path, monkeypatch, kwargs, match):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    with pytest.raises(ValueError, match=match):
        harness.run_migration(**kwargs, qemu=NO_QEMU)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("kwargs", [
    {"ram_mib": 8192, "start_page": 786432 - 4096, "pages": 4096},  # up to the end of low RAM
    {"ram_mib": 3583, "pages": 3583 * 256 - 256},
    {"pages": 16384, "stride": 4095, "zero_every": 1, "fill": False, "prealloc": True,
     "rate": None},
    {"pages": 16384, "pattern": "random", "zero_every": 7, "fill": np.bool_(False)},
])
def test_run_migration_accepts(kwargs):
    # The checks pass: the next thing it needs is the QEMU binary.
    with pytest.raises(RuntimeError, match="not found"):
        harness.run_migration(**kwargs, qemu=NO_QEMU)


def test_gcd_message_is_exact():
    assert math.gcd(4096, 16384) == 4096
    with pytest.raises(ValueError, match=r"\(gcd 4096\)"):
        guest.check_params(pages=16384, stride=4096)
