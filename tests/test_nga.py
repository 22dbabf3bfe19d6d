"""import_nga on small CSV files in exactly the NGA open-data format, a local image folder, and a
local IIIF server on 127.0.0.1 (tests never touch the internet)."""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from gallery.importers.common import FetchError
from gallery.importers.fetch import fetch_url
from gallery.models import Artwork
from tests.helpers import ALL_PAINTINGS, sample_painting

pytestmark = pytest.mark.django_db

# Header names and order exactly as in the NGA opendata `\d objects` / `\d published_images`.
OBJECT_COLUMNS = [
    "objectid",
    "accessioned",
    "accessionnum",
    "locationid",
    "title",
    "displaydate",
    "beginyear",
    "endyear",
    "visualbrowsertimespan",
    "medium",
    "dimensions",
    "inscription",
    "markings",
    "attributioninverted",
    "attribution",
    "provenancetext",
    "creditline",
    "classification",
    "subclassification",
    "visualbrowserclassification",
    "parentid",
    "isvirtual",
    "departmentabbr",
    "portfolio",
    "series",
    "volume",
    "watermarks",
    "lastdetectedmodification",
    "wikidataid",
    "customprinturl",
]
IMAGE_COLUMNS = [
    "uuid",
    "iiifurl",
    "iiifthumburl",
    "viewtype",
    "sequence",
    "width",
    "height",
    "maxpixels",
    "created",
    "modified",
    "depictstmsobjectid",
    "assistivetext",
]

REFERENCE = ALL_PAINTINGS.parent.parent / "reference" / "nga-opendata"


def paint(name: str) -> Path:
    return sample_painting(name)


def obj(objectid: int, title: str, classification: str = "Painting", **extra: str) -> dict:
    row = dict.fromkeys(OBJECT_COLUMNS, "")
    row.update(
        objectid=str(objectid),
        accessioned="1",
        accessionnum=f"1937.1.{objectid}",
        title=title,
        displaydate="c. 1480/1485",
        beginyear="1480",
        endyear="1485",
        visualbrowsertimespan="1401 to 1500",
        medium="tempera on panel",
        dimensions="painted surface: 31 x 23 cm (12 3/16 x 9 1/16 in.)\nframed: 50 x 40 cm",
        attributioninverted="Botticelli, Sandro",
        attribution="Sandro Botticelli",
        creditline="Andrew W. Mellon Collection",
        classification=classification,
        visualbrowserclassification=classification.lower(),
        isvirtual="0",
        departmentabbr="DCRS",
        lastdetectedmodification="2024-01-30 13:27:36.47-05",
    )
    row.update(extra)
    return row


def img(uuid: str, objectid: int, base: str, **extra: str) -> dict:
    row = dict.fromkeys(IMAGE_COLUMNS, "")
    row.update(
        uuid=uuid,
        iiifurl=f"{base}/iiif/{uuid}",
        iiifthumburl=f"{base}/iiif/{uuid}/full/!200,200/0/default.jpg",
        viewtype="primary",
        sequence="0",
        width="4000",
        height="3000",
        maxpixels="",
        created="2013-02-11 11:11:45-05",
        modified="2023-05-01 08:01:02-04",
        depictstmsobjectid=str(objectid),
        assistivetext=f"A painting, object {objectid}, described for screen readers.",
    )
    row.update(extra)
    return row


def write(path: Path, columns: list[str], rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, quoting=csv.QUOTE_MINIMAL)
        writer.writeheader()
        writer.writerows(rows)
    return path


def run(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_nga", *args, stdout=out, stderr=err)
    return out.getvalue()


@pytest.fixture
def nga(tmp_path: Path) -> dict[str, Path]:
    """Six objects: two importable paintings, a drawing, a painting without any image, a
    painting whose image is a text file, a painting whose image file is missing."""
    base = "https://api.nga.gov"
    objects = [
        obj(1001, 'The Adoration of the Magi, "tondo", with a comma'),
        obj(1002, "Portrait of a Youth"),
        obj(1003, "A Study of Hands", classification="Drawing"),
        obj(1004, "Painting Without Image"),
        obj(1005, "Painting With Bad File"),
        obj(1006, "Painting With Missing File"),
    ]
    images = [
        img("u1001-alt", 1001, base, viewtype="alternate", sequence="0"),
        img("u1001-second", 1001, base, sequence="1"),
        img("u1001", 1001, base),
        img("u1002", 1002, base, assistivetext=""),
        img("u1003", 1003, base),
        img("u1005", 1005, base),
        img("u1006", 1006, base),
    ]
    folder = tmp_path / "nga-images"
    folder.mkdir()
    shutil.copy(paint("885.jpg"), folder / "u1001.jpg")
    shutil.copy(paint("887.jpg"), folder / "u1001-second.jpg")
    shutil.copy(paint("887.jpg"), folder / "u1001-alt.jpg")
    shutil.copy(paint("100342.jpg"), folder / "1002.jpg")  # named by objectid
    shutil.copy(paint("890.jpg"), folder / "u1003.jpg")
    (folder / "u1005.jpg").write_text("<html>404 Not Found</html>")
    return {
        "objects": write(tmp_path / "objects.csv", OBJECT_COLUMNS, objects),
        "images": write(tmp_path / "published_images.csv", IMAGE_COLUMNS, images),
        "dir": folder,
    }


def test_columns_match_the_reference_format() -> None:
    if not REFERENCE.is_dir():
        pytest.skip("the NGA format reference is not beside the project")
    for name, columns in (("objects", OBJECT_COLUMNS), ("published_images", IMAGE_COLUMNS)):
        lines = (REFERENCE / f"{name}.sql").read_text().splitlines()[3:]
        assert [line.split("|")[0].strip() for line in lines if "|" in line] == columns


def test_import_from_local_folder(nga: dict[str, Path]) -> None:
    out = run("--objects", str(nga["objects"]), "--images", str(nga["images"]),
              "--image-dir", str(nga["dir"]))  # fmt: skip
    assert "5 record(s): 3 created, 0 updated, 0 unchanged, 2 failed." in out
    assert "failed 1005: The file is not an image" in out
    assert "failed 1006: no image file named u1006.* or 1006.*" in out
    assert not Artwork.objects.filter(external_id__in=["1004", "1005", "1006"]).exists()

    art = Artwork.objects.get(source="nga", external_id="1001")
    assert art.title == 'The Adoration of the Magi, "tondo", with a comma'
    assert art.artist == "Sandro Botticelli"
    assert art.dimensions.endswith("framed: 50 x 40 cm")  # a quoted line break survives
    assert (art.display_date, art.begin_year, art.end_year) == ("c. 1480/1485", 1480, 1485)
    assert art.classification == "Painting"
    assert art.alt_text == "A painting, object 1001, described for screen readers."
    assert art.source_url == "https://www.nga.gov/collection/art-object-page.1001.html"
    assert "CC0" in art.license
    # The primary image with the lowest sequence, not the alternate or the second primary.
    assert art.image_sha256 == hashlib.sha256(paint("885.jpg").read_bytes()).hexdigest()
    assert Artwork.objects.get(external_id="1002").alt_text == ""

    again = run("--objects", str(nga["objects"]), "--images", str(nga["images"]),
                "--image-dir", str(nga["dir"]))  # fmt: skip
    assert "0 created, 0 updated, 3 unchanged, 2 failed" in again


def test_classification_filter_and_limit(nga: dict[str, Path]) -> None:
    args = ["--objects", str(nga["objects"]), "--images", str(nga["images"])]
    out = run(*args, "--image-dir", str(nga["dir"]), "--classification", "painting", "--limit", "2")
    assert "2 record(s): 2 created" in out
    assert set(Artwork.objects.values_list("external_id", flat=True)) == {"1001", "1002"}
    run(*args, "--image-dir", str(nga["dir"]), "--classification", "DRAWING")
    assert Artwork.objects.get(external_id="1003").classification == "Drawing"


def test_edited_object_is_updated(nga: dict[str, Path], tmp_path: Path) -> None:
    args = ["--images", str(nga["images"]), "--image-dir", str(nga["dir"]), "--limit", "1"]
    run("--objects", str(nga["objects"]), *args)
    edited = write(tmp_path / "objects2.csv", OBJECT_COLUMNS, [obj(1001, "Retitled")])
    assert "0 created, 1 updated, 0 unchanged" in run("--objects", str(edited), *args)
    assert Artwork.objects.get(external_id="1001").title == "Retitled"


def test_missing_columns_are_refused_before_anything_is_written(
    nga: dict[str, Path], tmp_path: Path, _media_root: Path
) -> None:
    broken = tmp_path / "published_images.csv"
    lines = nga["images"].read_text().splitlines(keepends=True)
    broken.write_text(lines[0].replace("viewtype,", "") + "".join(lines[1:]))
    with pytest.raises(CommandError, match=r"published_images.csv: missing column\(s\) viewtype"):
        run("--objects", str(nga["objects"]), "--images", str(broken),
            "--image-dir", str(nga["dir"]))  # fmt: skip
    assert not Artwork.objects.exists()
    assert not Path(_media_root).exists() or not any(Path(_media_root).rglob("*.*"))


def test_broken_quoting_in_objects_names_the_line(nga: dict[str, Path], tmp_path: Path) -> None:
    text = nga["objects"].read_text()
    bad = tmp_path / "objects_bad.csv"
    # Break the quoting of object 1002's row: a quote in the middle of an unquoted field.
    bad.write_text(text.replace("Portrait of a Youth", 'Portrait "of" a Youth",x'))
    out = run("--objects", str(bad), "--images", str(nga["images"]),
              "--image-dir", str(nga["dir"]))  # fmt: skip
    assert "failed objects_bad.csv line 4" in out
    assert Artwork.objects.filter(external_id="1001").exists()
    assert not Artwork.objects.filter(external_id="1002").exists()


# --- IIIF over HTTP, against a server on 127.0.0.1 ---------------------------------------------


class IIIFServer:
    """Serves files by URL path; `plan[path]` lists what the next requests get first
    ("500", or "slow": held until `release` is set); every request path is logged, and every
    path answered with its file."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.plan: dict[str, list[str]] = {}
        self.log: list[str] = []
        self.answered: list[str] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                server.log.append(self.path)
                step = server.plan.get(self.path, [])
                action = step.pop(0) if step else "ok"
                if action == "slow":
                    server.release.wait(timeout=60)
                if action == "500" or self.path not in server.files:
                    self.send_response(500 if action == "500" else 404)
                    self.end_headers()
                    return
                body = server.files[self.path]
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                server.answered.append(self.path)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def iiif() -> Iterator[IIIFServer]:
    server = IIIFServer()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.httpd.shutdown()
    server.httpd.server_close()


def test_fetch_retries_a_500_then_succeeds(iiif: IIIFServer) -> None:
    iiif.files["/a.jpg"] = b"picture"
    iiif.plan["/a.jpg"] = ["500"]
    assert fetch_url(f"{iiif.base}/a.jpg", retries=2, backoff=0.01) == b"picture"
    assert iiif.log == ["/a.jpg", "/a.jpg"]


def test_fetch_times_out_and_names_the_url(iiif: IIIFServer) -> None:
    iiif.files["/slow.jpg"] = b"picture"
    iiif.plan["/slow.jpg"] = ["slow", "slow"]
    # The server holds both requests until the test releases it: only the client's own timeout
    # can end the fetch, and it does so before any answer.
    with pytest.raises(FetchError, match=r"could not fetch http://127.0.0.1:\d+/slow.jpg: timed"):
        fetch_url(f"{iiif.base}/slow.jpg", timeout=0.3, retries=1, backoff=0.01)
    assert iiif.log == ["/slow.jpg", "/slow.jpg"]
    assert iiif.answered == []


def test_fetch_does_not_retry_a_404_and_refuses_other_schemes(iiif: IIIFServer) -> None:
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_url(f"{iiif.base}/missing.jpg", retries=3, backoff=0.01)
    assert iiif.log == ["/missing.jpg"]
    with pytest.raises(FetchError, match="only http and https"):
        fetch_url("file:///etc/passwd")


def test_import_over_iiif_with_retries_and_refetch_of_a_changed_image(
    iiif: IIIFServer, tmp_path: Path
) -> None:
    objects = write(tmp_path / "objects.csv", OBJECT_COLUMNS, [obj(1, "One"), obj(2, "Two"),
                                                               obj(3, "Three")])  # fmt: skip
    images = write(
        tmp_path / "published_images.csv",
        IMAGE_COLUMNS,
        [
            img("a", 1, iiif.base),
            img("b", 2, iiif.base, width="600", height="900"),  # narrower than asked for
            img("c", 3, iiif.base, maxpixels="640"),  # the server caps the longer side
        ],
    )
    paths = {
        "a": "/iiif/a/full/843,/0/default.jpg",
        "b": "/iiif/b/full/600,/0/default.jpg",
        "c": "/iiif/c/full/640,/0/default.jpg",
    }
    iiif.files[paths["a"]] = paint("885.jpg").read_bytes()
    iiif.files[paths["b"]] = paint("887.jpg").read_bytes()
    iiif.files[paths["c"]] = paint("100342.jpg").read_bytes()
    iiif.plan[paths["a"]] = ["500"]  # one transient failure: retried
    args = ["--objects", str(objects), "--images", str(images), "--workers", "3",
            "--timeout", "5"]  # fmt: skip
    out = run(*args)
    assert "3 record(s): 3 created, 0 updated, 0 unchanged, 0 failed." in out
    assert sorted(iiif.log) == sorted([paths["a"], paths["a"], paths["b"], paths["c"]])

    # The museum publishes a new photograph under the same URL: the next run fetches it.
    iiif.files[paths["b"]] = paint("890.jpg").read_bytes()
    out = run(*args)
    assert "0 created, 1 updated, 2 unchanged, 0 failed" in out
    assert (
        Artwork.objects.get(external_id="2").image_sha256
        == hashlib.sha256(paint("890.jpg").read_bytes()).hexdigest()
    )

    # A server that keeps failing: that record is reported, the others are unchanged.
    iiif.plan[paths["c"]] = ["500", "500"]
    out = run(*args, "--retries", "1")
    assert "0 created, 0 updated, 2 unchanged, 1 failed" in out
    assert f"failed 3: could not fetch {iiif.base}{paths['c']}: HTTP 500" in out
