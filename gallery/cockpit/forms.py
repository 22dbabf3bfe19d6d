"""The import forms, and the upload handler that streams their files to disk under a size cap."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.template.defaultfilters import filesizeformat

from gallery.jobs.archives import UnsafeArchiveError, check_zip
from gallery.jobs.services import archive_limits
from gallery.models import Collection

TOO_LARGE = "upload_too_large"  # request attribute set when the cap stopped an upload


class CappedUploadHandler(FileUploadHandler):
    """Counts the bytes of every file of a request and stops the upload at
    GALLERY_IMPORT_MAX_UPLOAD_BYTES (the files themselves go to disk through Django's
    TemporaryFileUploadHandler, next in the list). The view turns the flag into a message."""

    def handle_raw_input(
        self,
        input_data: Any,
        META: dict[str, Any],
        content_length: int,
        boundary: str,
        encoding: str | None = None,
    ) -> None:
        self.received = 0
        # A declared length over the cap (plus room for the form's fields) stops at the first
        # chunk: nothing of such a request is written.
        self.refused = content_length > settings.GALLERY_IMPORT_MAX_UPLOAD_BYTES + 65536

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.refused or self.received > settings.GALLERY_IMPORT_MAX_UPLOAD_BYTES:
            setattr(self.request, TOO_LARGE, True)
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def too_large_message() -> str:
    limit = filesizeformat(settings.GALLERY_IMPORT_MAX_UPLOAD_BYTES)
    return f"The upload is larger than {limit}, the most accepted; nothing was imported."


class ImportForm(forms.Form):
    collection = forms.ModelChoiceField(
        queryset=Collection.objects.all(), help_text="The collection the artworks go into."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        default = Collection.objects.filter(name="default").first()
        if default is not None:
            self.fields["collection"].initial = default.pk

    def parameters(self) -> dict[str, Any]:
        """The job's options from the cleaned form."""
        raise NotImplementedError


class ZipImportForm(ImportForm):
    archive = forms.FileField(help_text="A .zip of images (JPEG, PNG, WebP, TIFF, GIF, BMP).")
    metadata = forms.FileField(
        required=False,
        help_text="Optional: a .csv or .json file of records, matched to images by id (the "
        "file name without extension) or a file/filename/image column. Without it, one .csv "
        "or .json at the top of the archive is used, if there is one.",
    )
    source = forms.CharField(
        initial="local",
        max_length=32,
        help_text="A label for where the records come from (lowercase letters, digits, - _).",
    )

    def clean_source(self) -> str:
        value: str = self.cleaned_data["source"]
        if not re.fullmatch(r"[a-z0-9_-]{1,32}", value):
            raise forms.ValidationError("Use 1–32 lowercase letters, digits, - or _.")
        return value

    def clean_archive(self) -> UploadedFile:
        upload: UploadedFile = self.cleaned_data["archive"]
        if not (upload.name or "").lower().endswith(".zip"):
            raise forms.ValidationError("Choose a .zip file.")
        try:
            if hasattr(upload, "temporary_file_path"):
                check_zip(path=Path(upload.temporary_file_path()), limits=archive_limits())
            else:
                raise UnsafeArchiveError("it was not stored on disk")
        except UnsafeArchiveError as exc:
            raise forms.ValidationError(f"This archive was refused: {exc}.") from exc
        return upload

    def clean_metadata(self) -> UploadedFile | None:
        upload: UploadedFile | None = self.cleaned_data.get("metadata")
        if upload and not (upload.name or "").lower().endswith((".csv", ".json")):
            raise forms.ValidationError("The metadata file must be a .csv or .json file.")
        return upload

    def parameters(self) -> dict[str, Any]:
        return {"source": self.cleaned_data["source"]}


class NgaImportForm(ImportForm):
    objects = forms.FileField(label="objects.csv", help_text="The NGA open data's objects.csv.")
    images = forms.FileField(
        label="published_images.csv", help_text="The NGA open data's published_images.csv."
    )
    iiif_width = forms.IntegerField(
        label="IIIF width",
        initial=843,
        min_value=1,
        max_value=4096,
        help_text="Width in pixels of the images downloaded from the NGA's IIIF server.",
    )
    limit = forms.IntegerField(
        required=False, min_value=1, help_text="Import at most this many objects (empty: all)."
    )
    classification = forms.CharField(
        required=False, max_length=128, help_text="Only this classification, e.g. painting."
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in ("objects", "images"):
            upload = cleaned.get(name)
            if upload is not None and not (upload.name or "").lower().endswith(".csv"):
                self.add_error(name, "Choose a .csv file.")
        return cleaned

    def parameters(self) -> dict[str, Any]:
        return {
            "source": "nga",
            "iiif_width": self.cleaned_data["iiif_width"],
            "limit": self.cleaned_data["limit"],
            "classification": self.cleaned_data["classification"].strip(),
        }


class NewFeatureForm(forms.Form):
    """A new embedding feature from a SigLIP checkpoint, filled by an embedding run. The
    checkpoint is checked offline when the feature is made (search.features.check_new_feature)."""

    checkpoint = forms.CharField(
        max_length=500,
        widget=forms.TextInput(attrs={"size": 70}),
        help_text="A SigLIP checkpoint on this machine: a Hugging Face id in its cache (e.g. "
        "google/siglip-base-patch16-224) or a folder saved with save_pretrained. Nothing is "
        "downloaded; every embedding worker must have it at the same place.",
    )
    name = forms.CharField(
        required=False,
        max_length=200,
        help_text="The feature's name. Empty: the checkpoint's name and the encoder version, "
        "e.g. siglip-base-patch16-224@v1.",
    )
    activate = forms.BooleanField(
        required=False,
        initial=True,
        label="Activate when complete",
        help_text="Searches switch to this feature once every artwork has a vector under it; "
        "until then they keep the active one. Unticked, activate it yourself later.",
    )

    def clean_name(self) -> str:
        value: str = self.cleaned_data["name"].strip()
        if value and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,199}", value):
            raise forms.ValidationError("Use letters, digits and . _ @ - (no spaces).")
        return value
