"""import_folder and import_aic on real paintings and on bad input."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from PIL import Image
from pytest_django import DjangoCaptureOnCommitCallbacks

from gallery.importers.aic import aic_records
from gallery.importers.common import ImportRecord, RecordError
from gallery.importers.dates import parse_years
from gallery.models import Artwork
from tests.helpers import PAINTINGS_DIR, SAMPLE_PAINTINGS, at, sample_painting

pytestmark = pytest.mark.django_db


SAMPLE_DIR = SAMPLE_PAINTINGS
REAL_IDS = ["866", "100026", "100342"]


def run(command: str, *args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command(command, *args, stdout=out, stderr=err)
    return out.getvalue()


def media_files(media_root: Path) -> set[str]:
    root = Path(media_root)
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def stored_files() -> set[str]:
    arts = Artwork.objects.all()
    return {name for art in arts for name in (art.image.name, art.thumbnail.name) if name}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Three real paintings (one in a subfolder) and two bad files."""
    root = tmp_path / "collection"
    (root / "nested").mkdir(parents=True)
    shutil.copy(sample_painting("885.jpg"), root / "866.jpg")
    shutil.copy(sample_painting("887.jpg"), root / "100026.jpg")
    shutil.copy(sample_painting("100342.jpg"), root / "nested" / "100342.jpg")
    (root / "notes.jpg").write_text("this is a text file, not a picture\n")
    data = sample_painting("890.jpg").read_bytes()
    (root / "cut.jpg").write_bytes(data[: len(data) // 3])
    return root


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        fields = list(dict.fromkeys(key for row in rows for key in row))
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_import_folder_reports_bad_files_by_name_and_imports_the_rest(
    folder: Path, tmp_path: Path, _media_root: Path
) -> None:
    meta = write_csv(
        tmp_path / "meta.csv",
        [
            {"id": "866", "title": "Helena, with a comma", "artist": "Van Dyck", "date": "c. 1631"},
            {"file": "nested/100342.jpg", "title": "Matched by file", "artist": "", "date": ""},
        ],
    )
    out = run("import_folder", str(folder), "--metadata", str(meta))
    assert "5 record(s): 3 created, 0 updated, 0 unchanged, 2 failed." in out
    assert "failed notes: The file is not an image" in out
    assert "failed cut: The image is damaged or incomplete" in out

    helena = Artwork.objects.get(source="local", external_id="866")
    assert (helena.title, helena.artist, helena.display_date) == (
        "Helena, with a comma",
        "Van Dyck",
        "c. 1631",
    )
    assert (helena.begin_year, helena.end_year) == (1631, 1631)
    assert Artwork.objects.get(external_id="nested/100342").title == "Matched by file"
    assert Artwork.objects.get(external_id="100026").title == "100026"  # no row: file name
    assert Artwork.objects.count() == 3
    # Nothing half-written: exactly the files of the three good records.
    assert media_files(_media_root) == stored_files()

    # Second run: nothing changes.
    before = {a.pk: a.updated_at for a in Artwork.objects.all()}
    out = run("import_folder", str(folder), "--metadata", str(meta))
    assert "0 created, 0 updated, 3 unchanged, 2 failed" in out
    assert {a.pk: a.updated_at for a in Artwork.objects.all()} == before


def test_edited_record_and_changed_image_are_updated(
    folder: Path,
    tmp_path: Path,
    _media_root: Path,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"866": {"title": "Old title"}, "100026": {"title": "Same"}}))
    with django_capture_on_commit_callbacks(execute=True):
        run("import_folder", str(folder), "--metadata", str(meta))
    old_sha = Artwork.objects.get(external_id="100026").image_sha256

    meta.write_text(json.dumps({"866": {"title": "New title"}, "100026": {"title": "Same"}}))
    # A new version of the 100026 picture (another painting's bytes under the same name).
    shutil.copy(sample_painting("896.jpg"), folder / "100026.jpg")
    with django_capture_on_commit_callbacks(execute=True):
        out = run("import_folder", str(folder), "--metadata", str(meta))
    assert "0 created, 2 updated, 1 unchanged, 2 failed" in out
    assert Artwork.objects.get(external_id="866").title == "New title"
    changed = Artwork.objects.get(external_id="100026")
    assert changed.image_sha256 != old_sha
    assert (at(_media_root, changed.image.name)).read_bytes() == (
        folder / "100026.jpg"
    ).read_bytes()
    assert media_files(_media_root) == stored_files()  # the replaced files were deleted


def test_csv_with_missing_columns_is_refused_before_anything_is_written(
    folder: Path, tmp_path: Path, _media_root: Path
) -> None:
    meta = write_csv(tmp_path / "meta.csv", [{"title": "No id", "artist": "Nobody"}])
    with pytest.raises(CommandError, match=r"meta.csv: missing column\(s\) id or file"):
        run("import_folder", str(folder), "--metadata", str(meta))
    assert not Artwork.objects.exists()
    assert media_files(_media_root) == set()


def test_csv_with_broken_quoting_skips_that_row_naming_its_line(
    folder: Path, tmp_path: Path
) -> None:
    meta = tmp_path / "meta.csv"
    meta.write_text(
        'id,title,artist\n866,"Helena",Van Dyck\n100026,"Broken" quote,X\n"100342,"Unterminated,Y\n'
    )
    out = run("import_folder", str(folder), "--metadata", str(meta))
    assert "failed meta.csv line 3: broken CSV quoting" in out
    assert "failed meta.csv line 4: broken CSV quoting" in out
    assert Artwork.objects.get(external_id="866").title == "Helena"
    # The images whose rows were broken still go in, titled by their file names.
    assert Artwork.objects.get(external_id="100026").title == "100026"


def test_csv_row_with_wrong_field_count_is_named(folder: Path, tmp_path: Path) -> None:
    meta = tmp_path / "meta.csv"
    meta.write_text("id,title\n866,Helena,extra field\n")
    out = run("import_folder", str(folder), "--metadata", str(meta))
    assert "failed meta.csv line 2 (id 866): has 3 field(s), the header has 2" in out


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="is not a folder; nothing was imported"):
        run("import_folder", str(tmp_path / "nowhere"))


@pytest.mark.parametrize(
    ("text", "years"),
    [
        ("c. 1505", (1505, 1505)),
        ("1461/62", (1461, 1462)),
        ("1890–95", (1890, 1895)),
        ("1375/1400", (1375, 1400)),
        ("1873-75", (1873, 1875)),
        ("c. 1580–c. 1600", (1580, 1600)),
        ("1855, reworked 1857–59", (1855, 1859)),
        ("Late 1630s", (1630, 1639)),
        ("16th century", (1500, 1599)),
        ("Date unknown", (None, None)),
        ("", (None, None)),
    ],
)
def test_parse_years(text: str, years: tuple[int | None, int | None]) -> None:
    assert parse_years(text) == years


def test_aic_fields_are_mapped(aic_records: list[dict]) -> None:
    records = aic_records_by_id()
    piero = next(r for r in aic_records if r["description_html"])
    meta = records[str(piero["id"])].metadata
    assert meta["description"] == piero["description_html"].strip()
    assert meta["artist"] == piero["artist"]
    assert meta["display_date"] == piero["date"]
    assert meta["begin_year"] == parse_years(piero["date"])[0]
    assert "CC0" in meta["license"] and "CC BY 4.0" in meta["license"]
    assert meta["source_url"].startswith("https://www.artic.edu/artworks/")


def aic_records_by_id() -> dict[str, ImportRecord]:
    out = {}
    for record in aic_records(directory=PAINTINGS_DIR):
        assert not isinstance(record, RecordError), record
        out[record.external_id] = record
    return out


def test_import_aic_subset_then_rerun_is_unchanged(tmp_path: Path, aic_records: list[dict]) -> None:
    subset = tmp_path / "aic"
    (subset / "images").mkdir(parents=True)
    described = [r for r in aic_records if r["description_html"]][:3]
    chosen = list({r["id"]: r for r in described + aic_records[:3]}.values())  # each record once
    for record in chosen:
        shutil.copy(PAINTINGS_DIR / record["image"], subset / record["image"])
    bad = {**chosen[0], "id": 999999999, "image": "images/999999999.jpg"}  # file is missing
    (subset / "artworks.json").write_text(json.dumps([*chosen, bad]))

    out = run("import_aic", str(subset))
    assert f"{len(chosen)} created, 0 updated, 0 unchanged, 1 failed" in out
    assert "failed 999999999: cannot read 999999999.jpg" in out
    art = Artwork.objects.get(source="aic", external_id=str(chosen[0]["id"]))
    assert art.description.startswith("<p>") and art.classification == "Painting"
    assert art.begin_year is not None
    out = run("import_aic", str(subset))
    assert f"0 created, 0 updated, {len(chosen)} unchanged, 1 failed" in out


def test_bundled_sample_imports_completely() -> None:
    records = json.loads((SAMPLE_DIR / "artworks.json").read_text())
    assert 80 <= len(records) <= 120
    size = sum(p.stat().st_size for p in (SAMPLE_DIR / "images").iterdir())
    assert size < 6_000_000
    for path in list((SAMPLE_DIR / "images").iterdir())[:10]:
        assert max(Image.open(path).size) <= 512
    out = run("import_aic", str(SAMPLE_DIR))
    assert f"{len(records)} created, 0 updated, 0 unchanged, 0 failed" in out
    assert Artwork.objects.filter(source="aic").exclude(thumbnail="").count() == len(records)


# Collections ------------------------------------------------------------------------------------
def test_imports_go_into_the_collection_named_on_the_command_line(
    folder: Path, _media_root: Path
) -> None:
    from gallery.models import Collection

    paintings = Collection.objects.create(name="paintings")
    summary = run("import_folder", str(folder), "--collection", "paintings")
    assert "3 created" in summary
    imported = sorted(paintings.artworks.values_list("external_id", flat=True))
    assert imported == ["100026", "866", "nested/100342"]
    # The same records in another collection are other artworks; each collection keeps its own.
    run("import_folder", str(folder))
    default = Collection.objects.get(name="default")
    assert sorted(default.artworks.values_list("external_id", flat=True)) == imported
    assert Artwork.objects.count() == 6
    # A second run into the first collection changes nothing there.
    assert "3 unchanged" in run("import_folder", str(folder), "--collection", str(paintings.pk))


def test_an_unknown_collection_imports_nothing(folder: Path) -> None:
    with pytest.raises(CommandError, match="no collection 'nope'.*default"):
        run("import_aic", str(SAMPLE_DIR), "--collection", "nope")
    with pytest.raises(CommandError, match="no collection 'nope'"):
        run("import_folder", str(folder), "--collection", "nope")
    assert Artwork.objects.count() == 0


def test_a_collection_without_thumbnails(folder: Path, _media_root: Path) -> None:
    from gallery.extractors import default_extractor
    from gallery.models import Collection

    extractor = default_extractor()
    extractor["parameters"]["generate_thumbnail"] = False
    bare = Collection.objects.create(name="bare", feature_extractor=extractor)
    run("import_folder", str(folder), "--collection", "bare")
    assert bare.artworks.count() == 3
    assert all(a.image and not a.thumbnail for a in bare.artworks.all())
