"""Part files: names, exclusive publication with a content hash, and tiling."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventlog.errors import IntegrityError
from eventlog.parts import Part, check_tiling, file_sha256, list_parts, part_name, write_part
from tests.support.logs import T0, envelope_rows


def _part(first: int, last: int) -> Part:
    return Part(first, last, "2026-11-26", Path(part_name(first, last)))


def test_part_name_is_its_zero_padded_range() -> None:
    assert part_name(1, 420) == "00000000000000000001-00000000000000000420.parquet"


def test_tiling_finds_gaps_and_overlaps() -> None:
    assert check_tiling([_part(1, 5), _part(6, 9)], 9) == []
    assert any("gap" in p for p in check_tiling([_part(1, 2), _part(4, 5)], 5))
    assert any("overlap" in p for p in check_tiling([_part(1, 3), _part(3, 5)], 5))
    assert any("sealed head" in p for p in check_tiling([_part(1, 3)], 5))


def test_write_part_never_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    import pyarrow as pa

    table = envelope_rows(start=1, n=3)
    part = write_part(tmp_path, "2026-11-26", table)
    assert part.path.name == part_name(1, 3)
    assert [p.path for p in list_parts(tmp_path)] == [part.path]
    # the hash and size were taken while writing: they are the file's
    assert (part.size, part.sha256) == (part.path.stat().st_size, file_sha256(part.path))
    assert part.name == f"date=2026-11-26/{part_name(1, 3)}"
    with pytest.raises(IntegrityError, match="already exists"):
        write_part(tmp_path, "2026-11-26", table)
    assert list(tmp_path.glob("date=*/*.tmp")) == []
    gappy = pa.concat_tables([table.slice(0, 1), table.slice(2, 1)])
    with pytest.raises(IntegrityError, match="not dense"):
        write_part(tmp_path, "2026-11-26", gappy)
    assert T0.tzinfo is not None
